"""Encode one camera's episode into an MP4, frame by frame, straight from ring memory.

The file is written under a temporary name and renamed when complete, so a finished episode's
video is either whole or absent. It is fragmented MP4 so that what was written stays decodable if
the writer dies. Frames are wrapped without a copy (`from_numpy_buffer`); the rgb24 -> yuv420p
conversion inside `encode()` copies, so the slot may be reused once `encode()` returns.
"""

from __future__ import annotations

import os
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from shmpipe import priority

DEMOTE_AGAIN_AT = frozenset({0, 1, 2, 5, 10, 30, 60})
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


class EpisodeVideoWriter:
    def __init__(
        self,
        path: str | Path,
        fps: int,
        width: int,
        height: int,
        vcodec: str,
        pix_fmt: str,
        codec_options: dict[str, str],
        demote: str = "new",
    ) -> None:
        """`demote`: which threads to put below the control loop once the codec has started its
        own: "all" of this process (a dedicated worker process), only the "new" ones and the
        calling thread (a worker thread beside the control loop), or "none"."""
        self.path = Path(path)
        self.partial_path = self.path.with_name(self.path.name + ".partial")
        self.frames = 0
        self._time_base = Fraction(1, fps)
        self._demote = demote
        self._codec_threads: set[int] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.partial_path), "w", format="mp4", options=FRAGMENTED_MP4)
        try:
            self._stream = self._container.add_stream(vcodec, rate=fps, options=codec_options)
            self._stream.width = width
            self._stream.height = height
            self._stream.pix_fmt = pix_fmt
        except BaseException:
            self.abort()
            raise

    def encode(self, frame_hwc: np.ndarray, frame_index: int) -> None:
        """Encode one RGB frame at pts `frame_index` (time base 1/fps); no copy before encode()."""
        if frame_index != self.frames:
            raise RuntimeError(
                f"{self.path.name}: got frame {frame_index}, expected {self.frames}; "
                "a frame went missing between the ring and the encoder"
            )
        video_frame = av.VideoFrame.from_numpy_buffer(frame_hwc, format="rgb24")
        video_frame.pts = frame_index
        video_frame.time_base = self._time_base
        first = self.frames == 0 and self._demote != "none"
        before = priority.thread_ids() if first else set()
        packets = self._stream.encode(video_frame)
        if first:
            # the codec opens on the first frame and starts its threads (real-time, as root) then
            if self._demote == "all":
                self._codec_threads = priority.thread_ids()
            else:
                self._codec_threads = priority.thread_ids() - before | {threading.get_native_id()}
        if self._codec_threads and (frame_index in DEMOTE_AGAIN_AT or frame_index % 150 == 0):
            # SVT-AV1 sets real-time priority from inside its threads, possibly after a first
            # demotion; doing it again a few times catches them all (~50 us each time)
            priority.demote(self._codec_threads)
        self._container.mux(packets)
        self.frames += 1

    def finish(self) -> tuple[float, int]:
        """Flush the encoder, close the file and rename it into place: (seconds, bytes)."""
        start = time.perf_counter()
        self._container.mux(self._stream.encode(None))
        self._container.close()
        os.replace(self.partial_path, self.path)
        return time.perf_counter() - start, self.path.stat().st_size

    def abort(self) -> None:
        """Stop without a file: close whatever is open and delete the partial file."""
        try:
            self._container.close()
        except Exception:
            pass
        for p in (self.partial_path,):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
