"""The "file:<video>" source: any video PyAV decodes, looped and paced at the recording fps."""

from __future__ import annotations

import av
import numpy as np

from shmpipe.errors import SourceError
from shmpipe.tools.sources.base import Capture, ThreadedSource, capture_clock


class FileSource(ThreadedSource):
    """Any video PyAV decodes, as RGB at the file's size (or `size`), looping at its end and
    paced at the recording fps: the thread decodes the next frame, sleeps until it is due and
    then makes it current. Decoded arrays are never written again, so read_into copies the
    current one without a lock."""

    def __init__(self, spec: str, path: str, fps: int, size: tuple[int, int] | None) -> None:
        self.spec, self._path, self._size = spec, path, size
        self._container: av.container.InputContainer | None = None
        self._frames = self._decode_forever()
        try:
            first = self._next_frame()
        except av.FFmpegError as exc:
            self._frames.close()
            raise SourceError(f"{spec}: cannot decode {path!r}: {exc}") from exc
        self.shape = first.shape
        self._current = (first, Capture(capture_clock(), 0))
        self._start(fps)

    def _open(self):
        self._container = None
        try:
            self._container = av.open(self._path)
            stream = self._container.streams.video[0]
        except (av.FFmpegError, OSError, IndexError) as exc:
            message = f"{self.spec}: cannot read a video from {self._path!r}: {exc}"
            raise SourceError(message) from exc
        stream.thread_type = "AUTO"
        return self._container.decode(stream)

    def _decode_forever(self):
        while True:
            count = 0
            try:
                for frame in self._open():
                    count += 1
                    yield frame
            finally:
                if self._container is not None:
                    self._container.close()
            if count == 0:
                raise SourceError(f"{self.spec}: {self._path!r} has no frames to decode")

    def _next_frame(self) -> np.ndarray:
        frame = next(self._frames)
        height, width = self._size or (frame.height, frame.width)
        return frame.to_ndarray(format="rgb24", width=width, height=height)

    def _capture_next(self) -> None:
        image = self._next_frame()
        sequence = self._current[1].sequence + 1
        self._sleep_until_due(sequence)
        if not self._stop.is_set():
            self._current = (image, Capture(capture_clock(), sequence))

    def _fill(self, out: np.ndarray) -> Capture:
        self._check_running()
        image, capture = self._current
        np.copyto(out, image)
        return capture

    def _release(self) -> None:
        if not self._thread.is_alive():
            self._frames.close()  # closes the container
