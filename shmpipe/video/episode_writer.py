"""Encode one camera's episode into an MP4, frame by frame, straight from ring memory.

RGB frames are wrapped without a copy (`from_numpy_buffer`); the rgb24 -> yuv420p conversion
inside `encode()` copies. Depth frames (uint16 mm) are quantized into a new gray12le frame.
The file is fragmented MP4 written under a temporary segment name and flushed at every keyframe,
so what the encoder has emitted up to its last keyframe is on disk even if the worker is killed
(`durable_frames`). A restarted worker continues the episode in a new segment; `finish` joins
the segments (a remux, no re-encode) and renames the result into place, so a finished episode's
video is either whole or absent.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from shmpipe import depth
from shmpipe.system import priority
from shmpipe.video.packets import frame_packets, mux_copy
from shmpipe.video.segments import (
    joining_path,
    remove_segments,
    segment_path,
    segment_paths,
    trim_segments,
)
from shmpipe.video.settings import VideoSettings

DEMOTE_AGAIN_AT = frozenset({0, 1, 2, 5, 10, 30, 60})
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
CRASH_SAFE_MP4 = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "flush_packets": "1",
}


def add_video_stream(container, video: VideoSettings):
    """The container's video stream, opened with `video`'s codec, size and options."""
    stream = container.add_stream(video.vcodec, rate=video.fps, options=video.codec_options)
    stream.width = video.width
    stream.height = video.height
    stream.pix_fmt = video.pix_fmt
    return stream


def input_frame(frame_hwc: np.ndarray, input_format: str) -> av.VideoFrame:
    """A ring slot's frame as the encoder's input: RGB wrapped in place, depth quantized."""
    if input_format == depth.PIX_FMT:
        return av.VideoFrame.from_numpy_buffer(
            depth.quantize(frame_hwc[..., 0]), format=depth.PIX_FMT
        )
    return av.VideoFrame.from_numpy_buffer(frame_hwc, format=input_format)


class EncoderOutputError(RuntimeError):
    """The codec emitted a frame out of order (SVT-AV1 has been seen, beside busy processes,
    to emit frame 380 before 355-379); caught before the muxer sees it, so that what is on
    disk stays in order and the episode can be encoded again from its last durable frame."""


def retryable(exc: BaseException) -> bool:
    """Whether encoding the same frames again may succeed: not when the disk refuses them."""
    return getattr(exc, "errno", None) not in DISK_ERRNOS


class EpisodeVideoWriter:
    def __init__(self, path: str | Path, video: VideoSettings, first_frame: int = 0) -> None:
        """Start a segment whose first frame is `first_frame` of the episode (0 unless a
        killed writer left earlier segments). Once the codec has started its threads, they are
        moved to `video.priority`: all threads of this process (`scope` "process", a worker
        process) or only the new ones and the calling thread ("thread", a worker thread)."""
        self.path = Path(path)
        self.first_frame = first_frame
        self.segment_path = segment_path(self.path, first_frame)
        self.next_frame = first_frame
        self.durable_frames = first_frame  # frames < this are in flushed fragments on disk
        self.muxed_frames = first_frame  # frames < this have been handed to the muxer
        self._time_base = Fraction(1, video.fps)
        self._video = video
        self._codec_threads: set[int] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if first_frame == 0:
            remove_segments(self.path)  # left by a run that died; this take starts afresh
        self._container = av.open(str(self.segment_path), "w", format="mp4", options=CRASH_SAFE_MP4)
        try:
            self._stream = add_video_stream(self._container, video)
        except BaseException:
            self.abort()
            raise

    def encode(self, frame_hwc: np.ndarray, frame_index: int) -> None:
        """Encode one frame at pts `frame_index` (time base 1/fps); an RGB frame is not copied
        before encode(), a depth frame is quantized (shmpipe.depth)."""
        if frame_index != self.next_frame:
            raise RuntimeError(
                f"{self.path.name}: got frame {frame_index}, expected {self.next_frame}; "
                "a frame went missing between the ring and the encoder"
            )
        video_frame = input_frame(frame_hwc, self._video.input_format)
        video_frame.pts = frame_index
        video_frame.time_base = self._time_base
        first = frame_index == self.first_frame
        before = priority.thread_ids() if first else set()
        packets = self._stream.encode(video_frame)
        if first:
            # the codec opens on the first frame and starts its threads (real-time, as root) then
            if self._video.scope == "process":
                self._codec_threads = priority.thread_ids()
            else:
                self._codec_threads = priority.thread_ids() - before | {threading.get_native_id()}
        n = frame_index - self.first_frame
        if n in DEMOTE_AGAIN_AT or n % 150 == 0:
            # SVT-AV1 sets real-time priority from inside its threads, possibly after a first
            # change; doing it again a few times catches them all (~50 us each time)
            priority.apply(self._codec_threads, self._video.priority)
        self._mux(packets)
        self.next_frame += 1

    def _mux(self, packets) -> None:
        """Mux packets that continue the episode's frames in order; one that does not raises
        EncoderOutputError before anything of it reaches the file. A keyframe starts a new
        fragment: every frame before it is then on disk."""
        for packet in packets:
            if packet.pts is None:
                self._container.mux(packet)
                continue
            index = round(packet.pts * packet.time_base / self._time_base)
            if index != self.muxed_frames:
                raise EncoderOutputError(
                    f"the encoder emitted frame {index} while frame {self.muxed_frames} was "
                    f"next (frames {self.first_frame}..{self.next_frame} fed in order)"
                )
            self._container.mux(packet)
            self.muxed_frames = index + 1
            if packet.is_keyframe:
                self.durable_frames = max(self.durable_frames, index)

    @property
    def frames(self) -> int:
        """Frames of the episode handed to this writer so far (including earlier segments)."""
        return self.next_frame

    def finish(self, kept_from: int = 0) -> tuple[float, int]:
        """Flush the encoder, close the segment, join segments, rename into place; the video
        holds frames `kept_from` (rolling capture's first kept frame) on, from time 0.

        Returns (seconds, bytes)."""
        start = time.perf_counter()
        self._flush()
        self._container.close()
        self.durable_frames = self.next_frame
        trim_segments(self.path, kept_from)
        segments = segment_paths(self.path)
        if len(segments) == 1 and segments[0][0] == kept_from == 0:
            os.replace(segments[0][1], self.path)
        else:
            join_segments(segments, self.next_frame, self._time_base, self.path, kept_from)
            for _, p in segments:
                p.unlink(missing_ok=True)
        return time.perf_counter() - start, self.path.stat().st_size

    def close_durably(self) -> None:
        """Flush the codec and close this segment, so every frame handed over is on disk; the
        episode goes on in a new segment (a new writer), and `finish` joins them."""
        self._flush()
        self._container.close()
        self.durable_frames = self.next_frame

    def _flush(self) -> None:
        self._mux(self._stream.encode(None))
        if self.muxed_frames != self.next_frame:
            raise EncoderOutputError(
                f"the encoder emitted frames {self.first_frame}..{self.muxed_frames - 1} of "
                f"{self.first_frame}..{self.next_frame - 1}"
            )

    def close_segment(self, drain: bool = False) -> None:
        """Close this segment as it is, for a successor writer to continue; `drain` empties
        the codec first, discarding what it emits (SVT-AV1 logs an error if closed without
        end-of-stream)."""
        if drain:
            self._drain()
        try:
            self._container.close()
        except Exception:
            pass

    def _drain(self) -> None:
        try:
            if self.next_frame > self.first_frame:
                self._stream.encode(None)
        except Exception:
            pass

    def abort(self) -> None:
        """Stop without a file: drain the codec (SVT-AV1 logs an error if it is closed without
        end-of-stream), close whatever is open and delete every segment."""
        self._drain()  # the packets are discarded with the file
        try:
            self._container.close()
        except Exception:
            pass
        remove_segments(self.path)


def join_segments(segments: list[tuple[int, Path]], num_frames: int, frame_time: Fraction,
                  path: Path, kept_from: int = 0) -> None:  # fmt: skip
    """Remux segments into one MP4 at `path`: from each segment the frames before the next
    segment's first frame (a killed writer's last fragment may repeat them), from frame
    `kept_from` on, which becomes time 0 (a segment start, or an even frame of one: g=2 makes
    it a keyframe). Raises if a frame is missing: a gap must never be hidden by shifting later
    frames."""
    partial = joining_path(path)
    bounds = [first for first, _ in segments[1:]] + [num_frames]
    expected = kept_from
    try:
        with av.open(str(partial), "w", format="mp4") as out:
            out_stream = None
            for (first, seg), end in zip(segments, bounds, strict=True):
                if first > expected:
                    raise RuntimeError(
                        f"{path.name}: frames {expected}..{first - 1} were lost in a crash"
                    )
                with av.open(str(seg)) as src:
                    in_stream = src.streams.video[0]
                    if out_stream is None:
                        out_stream = out.add_stream_from_template(in_stream, opaque=True)
                    origin = None  # the muxer rebases each file to start at 0; the name says where
                    for packet in frame_packets(src, in_stream):
                        if origin is None:
                            origin = packet.pts
                        index = first + round((packet.pts - origin) * packet.time_base / frame_time)
                        if max(first, kept_from) <= index < end:
                            step = frame_time / packet.time_base
                            pts = round((index - kept_from) * step)
                            mux_copy(out, out_stream, packet, pts, duration=round(step))
                            expected = max(expected, index + 1)
    except BaseException:
        partial.unlink(missing_ok=True)  # a gap raises in here: no half-joined file stays
        raise
    if expected != num_frames:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"{path.name}: joined {expected - kept_from} frames, expected "
                           f"{num_frames - kept_from}")
    os.replace(partial, path)
