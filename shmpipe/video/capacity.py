"""What this machine encodes per second at the configured sizes, known before the first frame.

On a robot's computer the cameras it can record are set by encoder CPU, and a rig that cannot
keep up otherwise learns so only once a ring is full. start()'s probe (shmpipe.video.probe) opens
each camera's codec at its real size and options anyway; it then encodes TIMED_FRAMES of
camera-like content (a panned texture with sensor noise: black or flat frames cost a fraction
of a real camera's) and reads the CPU time of the codec's threads. From that cost per frame,
`estimate` gives the share of the machine's cores the cameras need at their rate, and how many
streams of each size the cores would carry. CPU time, not wall time: it does not depend on what
else runs meanwhile (what else runs while recording is what MARGIN leaves room for).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

import numpy as np

TIMED_FRAMES = 8
MARGIN = 0.75  # the encoders may need at most this share of the cores: the rest is for the
# control loop, the stats worker (~4 % of the encoders' CPU) and whatever else the robot runs
_PAN_PX = 3  # texture shift per frame, as a camera panning slowly
_NOISE_SIGMA = 2.0


class CodecClock:
    """CPU seconds spent by a set of threads of this process since it was made (Linux
    schedstat, nanoseconds; a thread that ended meanwhile counts what it had spent by then)."""

    def __init__(self, thread_ids: set[int]) -> None:
        self._start = {tid: _thread_cpu_ns(tid) for tid in thread_ids}
        self._last = dict(self._start)
        self._wall = time.perf_counter()

    def seconds(self) -> float:
        total = 0
        for tid, start in self._start.items():
            now = _thread_cpu_ns(tid)
            self._last[tid] = now if now is not None else self._last[tid]
            if start is not None and self._last[tid] is not None:
                total += self._last[tid] - start
        return total / 1e9


def _thread_cpu_ns(tid: int) -> int | None:
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def camera_like(height: int, width: int, index: int, rgb: bool = True) -> np.ndarray:
    """Frame `index` of a slow pan across a smooth random texture with sensor noise: HxWx3 uint8,
    or HxWx1 uint16 depth in mm (the same texture, 0.5..3 m)."""
    texture, noise = _pattern(height, width)
    shift = (index * _PAN_PX) % _PAN_PX**2
    base = texture[shift : shift + height, shift : shift + width]
    grain = noise[(index * 7) % 16 :][:height, (index * 13) % 16 :][:, :width]
    if rgb:
        return np.clip(base.astype(np.int16) + grain, 0, 255).astype(np.uint8)
    mm = 500 + base[..., :1].astype(np.uint16) * 10
    return mm + grain[..., :1].astype(np.uint16) % 3


@functools.lru_cache(maxsize=8)
def _pattern(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A texture a little larger than the frame (blobs and edges at several scales) and a
    noise field (sigma ~2) to crop each frame's grain from."""
    rng = np.random.default_rng(0)
    h, w = height + _PAN_PX**2 + 1, width + _PAN_PX**2 + 1
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    texture = np.zeros((h, w, 3), np.float32)
    for period in (240.0, 90.0, 37.0, 15.0):  # gratings in random directions, finer = fainter
        angle, phase = rng.uniform(0, np.pi, 2)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period + phase)
        texture += (period**0.5 * 4.0) * wave[..., None] * rng.uniform(0.5, 1, 3)
    patches = rng.uniform(-40, 40, (h // 32 + 2, w // 32 + 2, 3)).astype(np.float32)  # edges
    texture += np.repeat(np.repeat(patches, 32, 0), 32, 1)[:h, :w]
    texture = np.clip(texture + 128, 0, 255).astype(np.uint8)
    noise = rng.normal(0, _NOISE_SIGMA, (height + 16, width + 16, 3)).round().astype(np.int16)
    return texture, noise


@dataclass(frozen=True)
class Capacity:
    """What the cameras need of this machine's encoding CPU at their frame rate.

    `load` is the share of all cores the encoders need (1.0: every core busy encoding);
    `streams[size]` how many streams of that size ("HxW") at `fps` the cores would carry;
    `fits` whether `load` stays within MARGIN."""

    cores: int
    fps: int
    load: float
    streams: dict[str, float]
    cpu_ms_per_frame: dict[str, float]

    @property
    def fits(self) -> bool:
        return self.load <= MARGIN

    @property
    def headroom(self) -> float:
        """The share of the cores left to the encoders beyond what they need (negative: short)."""
        return 1.0 - self.load

    def describe(self) -> str:
        """One line: the estimate per size, and what the cameras ask of it."""
        sizes = ", ".join(f"~{n:.1f} streams of {size} ({self.cpu_ms_per_frame[size]:.1f} ms CPU "
                          f"per frame)" for size, n in self.streams.items())  # fmt: skip
        return (
            f"this machine encodes {sizes} at {self.fps} fps on {self.cores} cores; the "
            f"cameras need {100 * self.load:.0f} % of them"
        )


def estimate(cameras: dict[str, tuple[int, int, float]], fps: int,
             cores: int | None = None) -> Capacity:  # fmt: skip
    """From each camera's (height, width, CPU seconds per frame): the share of `cores` (default:
    those this process may run on) its encoders need at `fps`, and streams per size."""
    cores = cores or len(os.sched_getaffinity(0))
    per_size: dict[str, float] = {}
    for height, width, cost in cameras.values():
        size = f"{height}x{width}"
        per_size[size] = max(per_size.get(size, 0.0), cost)
    load = sum(cost * fps for _, _, cost in cameras.values()) / cores
    streams = {size: cores / max(cost * fps, 1e-9) for size, cost in per_size.items()}
    cpu_ms = {size: 1e3 * cost for size, cost in per_size.items()}
    return Capacity(cores, fps, load, streams, cpu_ms)
