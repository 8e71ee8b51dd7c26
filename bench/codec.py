"""The encoder settings every variant shares, and how the bench opens and counts AV1 videos.

The before pipeline and the raw encoder limit must encode exactly as shmpipe does, or the
comparison measures settings instead of pipelines. Field names and defaults are LeRobot's.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class EncoderSettings:
    """Mirror of shmpipe.VideoEncoderConfig, usable without importing shmpipe."""

    vcodec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    g: int = 2
    crf: int = 30
    preset: int = 12
    fast_decode: int = 0
    extra_options: dict[str, str] = field(default_factory=dict)

    def codec_options(self, num_cameras: int) -> dict[str, str]:
        """The FFmpeg options shmpipe would pass for `num_cameras` encoders sharing the cores.

        Taken from shmpipe itself when it imports, so the two cannot drift apart; otherwise the
        same formula: LeRobot's g/crf/preset, and SVT-AV1's lp = cores / cameras.
        """
        try:
            from shmpipe import config
        except ImportError:
            return self._own_codec_options(num_cameras)
        shmpipe_config = config.VideoEncoderConfig(**asdict(self))
        return shmpipe_config.codec_options(config.encoder_threads(num_cameras))

    def _own_codec_options(self, num_cameras: int) -> dict[str, str]:
        cores = len(os.sched_getaffinity(0))
        threads = max(1, round(cores / max(1, num_cameras)))
        options = {"g": str(self.g), "crf": str(self.crf), "preset": str(self.preset)}
        svt = [f"lp={threads}"] + ([f"fast-decode={self.fast_decode}"] if self.fast_decode else [])
        options["svtav1-params"] = ":".join(svt)
        options.update({k: str(v) for k, v in self.extra_options.items()})
        return options


def open_video(
    path: Path, settings: EncoderSettings, height: int, width: int, fps: int, num_cameras: int
):
    """An opened (container, stream) pair ready for encode(); the encoder itself is open too.

    `num_cameras` is how many encoders share the machine (it sets SVT-AV1's thread count).
    """
    import av

    options = settings.codec_options(num_cameras)
    container = av.open(str(path), mode="w")
    stream = container.add_stream(settings.vcodec, rate=fps, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, settings.pix_fmt
    stream.codec_context.open()  # pay the encoder start-up here, not on the first frame
    return container, stream


def count_frames(path: Path, from_ts: float | None = None, to_ts: float | None = None) -> int:
    """Frames a decoder really gets back from `path`, optionally only those in [from_ts, to_ts)."""
    import av

    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        half_frame = 0.5 / float(stream.average_rate or stream.guessed_rate or 30)
        for frame in container.decode(stream):
            t = float(frame.pts * frame.time_base) if frame.pts is not None else None
            if t is not None and from_ts is not None and t < from_ts - half_frame:
                continue
            if t is not None and to_ts is not None and t >= to_ts - half_frame:
                continue
            count += 1
    return count
