"""Open the encoder once at start(), with the real size and options, before anything is recorded.

Three things are learnt: whether the codec accepts the settings at all (SVT-AV1 4.1, in PyAV 18's
wheel, refuses a side under 4 pixels only when it opens, which would otherwise be at the end of a
whole episode; 4.2, in PyAV 19's, pads and encodes it; neither opens beyond 16384x8704), how many
frames it holds back before its first packet (an encoder keeps every frame in the ring until the
fragment holding it is on disk, so a ring must hold that many frames plus a keyframe interval),
and what one frame of camera-like content costs in CPU (shmpipe.video.capacity).
"""

from __future__ import annotations

import functools
import io
import logging
import os
import threading

import av
import numpy as np

from shmpipe import depth
from shmpipe.errors import ConfigError
from shmpipe.system import priority
from shmpipe.video import capacity
from shmpipe.video.episode_writer import CRASH_SAFE_MP4, add_video_stream, input_frame
from shmpipe.video.settings import VideoSettings

log = logging.getLogger("shmpipe")
MAX_PROBE_FRAMES = 400
STEADY_FRAMES = 48
SVT_MAX_FPS = 240  # SVT-AV1 refuses a higher frame rate when it opens
SVT3_MIN_WIDTH = 32  # SVT-AV1 3.0 (PyAV 15's wheels, LeRobot's pin) dies of SIGFPE below it


def _svt_av1_3() -> bool:
    """PyAV 15's wheels bundle SVT-AV1 3.0 (16 to 19: 4.x, which refuses or pads small frames)."""
    return int(av.__version__.split(".")[0]) < 16


def min_ring_slots(video: VideoSettings, keyframe_interval: int) -> int:
    """Fewest slots with which an encoder that holds frames until they are durable does not run
    out of input: the frames the codec holds (half again as a margin: 3 streams of camera-like
    720p held 12-24 against the probe's 26), a keyframe interval, and two slots of slack. (If it
    ever does, the encoder closes its segment early rather than lose durability: see
    workers.encoder.)
    """
    held = frames_held_back(video)
    return held + held // 2 + max(1, keyframe_interval) + 2


class EncoderUnusable(ConfigError):
    """The encoder cannot open, or cannot encode, with these settings; `reason` in a few words."""

    def __init__(self, message: str, reason: str, code: int | None = None) -> None:
        super().__init__(message)
        self.reason, self.errno = reason, code  # errno: ENOMEM may be a process limit


def unusable_reason(video: VideoSettings) -> str | None:
    """None if the encoder opens and encodes with `video`'s settings here, else why not."""
    try:
        frames_held_back(video)
    except EncoderUnusable as exc:
        return exc.reason
    return None


def frames_held_back(video: VideoSettings) -> int:
    """Most frames the codec holds at once: fed but not yet out (cached per settings)."""
    return _probe_of(video)[0]


def cpu_per_frame(video: VideoSettings) -> float:
    """CPU seconds the codec spent per camera-like frame (all its threads; cached per settings)."""
    return _probe_of(video)[1]


def _probe_of(video: VideoSettings) -> tuple[int, float]:
    return _probe(probe_key(video), tuple(sorted(video.codec_options.items())))


def probe_key(video: VideoSettings) -> tuple:
    """What a probe's result depends on besides the codec options (its cache key)."""
    return (video.fps, video.width, video.height, video.vcodec, video.pix_fmt, video.priority,
            video.input_format)  # fmt: skip


@functools.lru_cache(maxsize=64)
def _probe(key: tuple, options: tuple) -> tuple[int, float]:
    """libsvtav1 has been seen (~1 start in 50, beside busy processes) to refuse one frame with
    EINVAL and then encode the same settings fine: an encode failure is tried once more."""
    try:
        return _probe_once(key, options)
    except EncoderUnusable as exc:
        if not exc.reason.startswith("cannot encode"):
            raise
        log.info("encoder probe: %s; trying once more", exc)
        return _probe_once(key, options)


def _probe_once(key: tuple, options: tuple) -> tuple[int, float]:
    fps, width, height, vcodec, pix_fmt, prio, input_format = key
    if vcodec == "libsvtav1" and fps > SVT_MAX_FPS:  # it says only "Invalid argument"
        raise EncoderUnusable(
            f"fps {fps}: SVT-AV1 (libsvtav1) encodes at most {SVT_MAX_FPS} fps; record at "
            f"{SVT_MAX_FPS} fps or less, or choose another vcodec (e.g. libx264)",
            f"cannot open: fps above {SVT_MAX_FPS}")
    if vcodec == "libsvtav1" and width < SVT3_MIN_WIDTH and _svt_av1_3():
        raise EncoderUnusable(
            f"width {width}: the SVT-AV1 3.0 in PyAV {av.__version__}'s wheel kills the process "
            f"(SIGFPE) on frames narrower than {SVT3_MIN_WIDTH} pixels; use a camera at least "
            f"{SVT3_MIN_WIDTH} wide, PyAV 16 or later, or another vcodec (e.g. libx264)",
            f"cannot open: narrower than {SVT3_MIN_WIDTH} pixels")
    video = VideoSettings(fps, width, height, vcodec, pix_fmt, dict(options), prio, "thread",
                          input_format)  # fmt: skip
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only, not its banner
    rgb = input_format != depth.PIX_FMT
    black = np.zeros((height, width, 3 if rgb else 1), np.uint8 if rgb else np.uint16)
    before = priority.thread_ids()
    caller = (os.sched_getscheduler(0), os.sched_getparam(0))  # SVT-AV1 raises the caller too
    held, emitted, last = 0, -1, None  # most frames in flight; newest frame out; when to stop
    stage = "cannot open"
    try:
        with av.open(io.BytesIO(), "w", format="mp4", options=CRASH_SAFE_MP4) as container:
            stream = add_video_stream(container, video)
            stream.codec_context.open()  # hardware encoders with no device fail here
            stage = "cannot encode"
            for i in range(MAX_PROBE_FRAMES):
                frame = input_frame(black, input_format)
                frame.pts = i
                packets = stream.encode(frame)
                if i == 0:  # the codec's own threads: keep them below the caller's
                    new = priority.thread_ids() - before - {threading.get_native_id()}
                    priority.apply(new, video.priority)
                # in frames: before mux() rescales pts to the stream's time base
                emitted = max([emitted] + [p.pts for p in packets if p.pts is not None])
                container.mux(packets)
                held = max(held, i - emitted)
                if emitted >= 0 and last is None:
                    last = i + STEADY_FRAMES  # packets may come in bursts: watch a while
                if i == last:
                    break
            cost = _time_camera_like(container, stream, i + 1, held, video,
                                     new | {threading.get_native_id()})  # fmt: skip
            container.mux(stream.encode(None))
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise EncoderUnusable(
            f"encoder {vcodec!r} ({pix_fmt}, {width}x{height} at {fps} fps, options "
            f"{dict(options)}) {stage}: {exc}",
            f"{stage}: {getattr(exc, 'strerror', None) or exc}",
            getattr(exc, "errno", None),
        ) from None
    finally:
        os.sched_setscheduler(0, *caller)
    return held, cost


def _time_camera_like(container, stream, first: int, held: int, video: VideoSettings,
                      threads: set[int]) -> float:  # fmt: skip
    """CPU seconds per frame of camera-like content, in steady state: from the first such
    frame's packet to TIMED_FRAMES packets later (the codec is then busy with those frames
    only, and none of its start-up or flush is counted)."""
    rgb = video.input_format != depth.PIX_FMT
    clock, out, start = capacity.CodecClock(threads), 0, None
    for i in range(first, first + 2 * (held + 2) + capacity.TIMED_FRAMES):
        frame = input_frame(capacity.camera_like(video.height, video.width, i, rgb),
                            video.input_format)  # fmt: skip
        frame.pts = i
        packets = stream.encode(frame)
        out += sum(1 for p in packets if p.pts is not None and p.pts >= first)  # mux rescales
        container.mux(packets)
        if start is None and out:
            start = (clock.seconds(), out)
        elif start is not None and out - start[1] >= capacity.TIMED_FRAMES:
            return (clock.seconds() - start[0]) / (out - start[1])
    return clock.seconds() / max(1, i + 1 - first)  # a codec that never got going: all of it


def open_codec(video: VideoSettings) -> None:
    """Open the encoder once and close it: its threads and memory are then known to fit (a
    worker does this before it says it is ready). Raises what opening raises."""
    with av.open(io.BytesIO(), "w", format="mp4", options=CRASH_SAFE_MP4) as container:
        add_video_stream(container, video).codec_context.open()
