"""Settings with LeRobot's names and defaults, and the few numbers derived from the machine.

`VideoEncoderConfig` mirrors LeRobot's video options so a dataset recorded here is encoded as
LeRobot would encode it. `ring_capacity` and `encoder_threads` are the visible formulas for how
many slots a ring gets and how many threads each encoder may use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

BACKEND_ENV = "SHMPIPE_BACKEND"
BACKENDS = ("process", "thread")
DEFAULT_RING_BUDGET_BYTES = 256 * 1024 * 1024  # shared by all cameras' rings
MIN_RING_SECONDS = 1.0
# An encoder keeps each frame in the ring until it is on disk; SVT-AV1 holds ~25-50 frames.
MIN_RING_SLOTS = 64
MAX_RING_SECONDS = 10.0  # more only costs memory: past this the overflow backlog takes over


@dataclass(frozen=True)
class VideoEncoderConfig:
    """Video encoding settings, LeRobot's names and defaults (AV1 via SVT-AV1, keyframe every 2)."""

    vcodec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    g: int = 2
    crf: int = 30
    preset: int = 12
    fast_decode: int = 0
    extra_options: dict[str, str] = field(default_factory=dict)

    def codec_options(self, threads: int) -> dict[str, str]:
        """FFmpeg codec options; `threads` becomes SVT-AV1's level of parallelism (lp)."""
        options = {"g": str(self.g), "crf": str(self.crf)}
        if self.vcodec == "libsvtav1":
            options["preset"] = str(self.preset)
            svt = [f"lp={threads}"]
            if self.fast_decode:
                svt.append(f"fast-decode={self.fast_decode}")
            options["svtav1-params"] = ":".join(svt)
        else:
            options["threads"] = str(threads)
            if self.vcodec in ("libx264", "libx265") and self.preset is not None:
                options["preset"] = str(self.preset)
        options.update({k: str(v) for k, v in self.extra_options.items()})
        return options

    def as_dict(self) -> dict:
        return {
            "vcodec": self.vcodec,
            "pix_fmt": self.pix_fmt,
            "g": self.g,
            "crf": self.crf,
            "preset": self.preset,
            "fast_decode": self.fast_decode,
            "extra_options": dict(self.extra_options),
        }


def backend_from_env() -> str:
    backend = os.environ.get(BACKEND_ENV, "process").strip().lower() or "process"
    if backend not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={backend!r}: expected one of {BACKENDS}")
    return backend


def encoder_threads(num_cameras: int, cores: int | None = None) -> int:
    """Threads per encoder so that all encoders together use about one thread per core."""
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, round(cores / max(1, num_cameras)))


def ring_capacity(
    frame_bytes: int, fps: int, num_cameras: int, budget_bytes: int = DEFAULT_RING_BUDGET_BYTES
) -> int:
    """Slots per ring: the camera's share of the memory budget, within 1 to 10 seconds of frames."""
    share = budget_bytes // max(1, num_cameras)
    slots = min(share // max(1, frame_bytes), int(fps * MAX_RING_SECONDS))
    return max(int(fps * MIN_RING_SECONDS), MIN_RING_SLOTS, slots)
