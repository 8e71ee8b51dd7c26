"""The encoder settings every variant shares, and how the bench opens and counts AV1 videos.

The before pipeline and the raw encoder limit must encode exactly as shmpipe does, or the
comparison measures settings instead of pipelines. Field names and defaults are LeRobot's.
"""

from __future__ import annotations

from pathlib import Path

from shmpipe.recorder import settings as recorder_settings
from shmpipe.video.encoder_config import VideoEncoderConfig


def codec_options(settings: VideoEncoderConfig, num_cameras: int) -> dict[str, str]:
    """The FFmpeg options shmpipe passes when `num_cameras` encoders share the cores."""
    return settings.codec_options(recorder_settings.encoder_threads(num_cameras))


def open_video(
    path: Path, settings: VideoEncoderConfig, height: int, width: int, fps: int, num_cameras: int
):
    """An opened (container, stream) pair ready for encode(); the encoder itself is open too.

    `num_cameras` is how many encoders share the machine (it sets SVT-AV1's thread count).
    """
    import av

    options = codec_options(settings, num_cameras)
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
