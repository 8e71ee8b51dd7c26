"""Camera sources that write each frame straight into a buffer the caller gives (a ring slot).

`open_source(spec, fps)` opens one: "opencv:<index, /dev/videoN or video file>", "file:<video>"
(PyAV, looping, paced at fps) or "synthetic[:HxW]". Real sources keep the newest frame from a
capture thread, so `read_into` never waits for the device; it converts or copies that frame into
`out` once and says when it was captured and whether it is a new frame (`Capture.sequence`).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from shmpipe.config import check_fps
from shmpipe.errors import ConfigError, SourceError

__all__ = ["Capture", "FrameSource", "SourceError", "open_source"]

SPEC_FORMS = (
    '"opencv:<camera index>", "opencv:/dev/videoN", "opencv:<video file>", "file:<video file>", '
    '"synthetic" or "synthetic:<height>x<width>" (e.g. "synthetic:480x640")'
)
SYNTHETIC_SHAPE = (480, 640)
JOIN_TIMEOUT_S = 2.0  # how long close() waits for a capture thread stuck in the driver


@dataclass(frozen=True)
class Capture:
    """What read_into delivered: `time` is time.time() when the frame was captured (as near
    the sensor as we can tell); `sequence` counts distinct frames from 0, so the same number
    again means the camera had no new frame since the last read_into."""

    time: float
    sequence: int


class FrameSource:
    """Frames of one camera as (H, W, 3) uint8 RGB, written into the caller's buffer.

    `shape` is known once the source is open. `read_into(out)` fills `out` (C-contiguous,
    writable, of `shape`) with the newest frame; it takes about one copy's time, never a
    frame period. Close it (or use it as a context manager) to stop its thread and device."""

    spec: str
    shape: tuple[int, int, int]

    def read_into(self, out: np.ndarray) -> Capture:
        if not (
            isinstance(out, np.ndarray)
            and out.dtype == np.uint8
            and out.shape == self.shape
            and out.flags.c_contiguous
            and out.flags.writeable
        ):
            raise ConfigError(f"{self.spec}: read_into needs a writable C-contiguous uint8 array "
                              f"of shape {self.shape}, got {_describe(out)}")  # fmt: skip
        return self._fill(out)

    def _fill(self, out: np.ndarray) -> Capture:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec!r} {self.shape}>"


class ThreadedSource(FrameSource):
    """A source whose capture thread calls `_capture_next()` until closed. The first frame is
    captured by the subclass before `_start()`, so `shape` is known at open. A failure in the
    thread is raised as SourceError by the next read_into."""

    def _start(self, fps: int) -> None:
        self.fps = fps
        self._start_time = time.monotonic()  # when frame 0 was current (see _sleep_until_due)
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"shmpipe {self.spec}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._capture_next()
        except BaseException as exc:  # kept for the control loop, which calls read_into
            self._failure = exc

    def _capture_next(self) -> None:
        raise NotImplementedError

    def _check_running(self) -> None:
        if self._closed:
            raise SourceError(f"{self.spec}: read_into after close()")
        if self._failure is not None:
            raise SourceError(f"{self.spec}: capture failed: {self._failure}") from self._failure

    def _sleep_until_due(self, index: int) -> None:
        """Pace a file like a camera: frame `index` is due `index / fps` after the first. After
        a stall of over a second the schedule starts again instead of catching up in a burst."""
        delay = self._start_time + index / self.fps - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)
        elif delay < -1.0:
            self._start_time -= delay

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT_S)
        self._release()

    def _release(self) -> None:
        pass


class SyntheticSource(FrameSource):
    """Camera-like test content made in read_into (no thread): a window panning over a smooth
    textured scene, plus sensor noise that changes every frame, so every frame differs."""

    PAN = 64  # pixels the window can move each way
    NOISE_FRAMES = 3
    NOISE_LEVELS = 9  # noise in 0..8 is added; the scene is kept to 0..247 so nothing wraps

    def __init__(self, spec: str, shape: tuple[int, int]) -> None:
        self.spec, self.shape = spec, (shape[0], shape[1], 3)
        rng = np.random.default_rng(0)
        self._scene = _scene(shape[0] + 2 * self.PAN, shape[1] + 2 * self.PAN, rng)
        self._noise = rng.integers(0, self.NOISE_LEVELS, (self.NOISE_FRAMES, *self.shape), np.uint8)
        self._sequence = -1

    def _fill(self, out: np.ndarray) -> Capture:
        k = self._sequence = self._sequence + 1
        dy, dx = _triangle(k, 2 * self.PAN), _triangle(2 * k, 2 * self.PAN)
        window = self._scene[dy : dy + self.shape[0], dx : dx + self.shape[1]]
        np.add(window, self._noise[k % self.NOISE_FRAMES], out=out)
        return Capture(time.time(), k)


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
        self._current = (first, Capture(time.time(), 0))
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
            self._current = (image, Capture(time.time(), sequence))

    def _fill(self, out: np.ndarray) -> Capture:
        self._check_running()
        image, capture = self._current
        np.copyto(out, image)
        return capture

    def _release(self) -> None:
        if not self._thread.is_alive():
            self._frames.close()  # closes the container


def open_source(spec: str, fps: int, size: tuple[int, int] | None = None) -> FrameSource:
    """Open the source `spec` for recording at `fps`; `size` is (height, width) to ask the
    camera for, or to make (synthetic, file); None: the device's or file's own (synthetic
    480x640). A bad spec is a ConfigError; a source that cannot deliver is a SourceError."""
    if not isinstance(spec, str):
        raise ConfigError(f"camera source {spec!r}: expected a string, one of {SPEC_FORMS}")
    fps = check_fps(fps)
    size = _check_size(spec, size)
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        return SyntheticSource(spec, _synthetic_shape(spec, arg, size))
    if kind == "file" and arg:
        if not Path(arg).is_file():
            raise SourceError(f"{spec}: no such video file {arg!r}")
        return FileSource(spec, arg, fps, size)
    if kind == "opencv" and arg:
        from shmpipe.source_opencv import OpenCVSource

        return OpenCVSource(spec, int(arg) if arg.isdigit() else arg, fps, size)
    raise ConfigError(f"camera source {spec!r}: expected one of {SPEC_FORMS}")


def _check_size(spec: str, size: object) -> tuple[int, int] | None:
    if size is None:
        return None
    if (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size)
    ):
        return int(size[0]), int(size[1])
    raise ConfigError(f"{spec}: size must be (height, width) in pixels or None, got {size!r}")


def _synthetic_shape(spec: str, arg: str, size: tuple[int, int] | None) -> tuple[int, int]:
    if not arg:
        return size or SYNTHETIC_SHAPE
    match = re.fullmatch(r"([1-9]\d{0,4})x([1-9]\d{0,4})", arg)
    if match is None:
        raise ConfigError(f"camera source {spec!r}: expected one of {SPEC_FORMS}")
    shape = int(match[1]), int(match[2])
    if size is not None and size != shape:
        raise ConfigError(f"{spec}: the spec says {shape[0]}x{shape[1]} but size is {size}")
    return shape


def _scene(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth colourful scene with soft-edged shapes and a fine grain, values 0..247."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    channels = []
    for phase in rng.uniform(0, 2 * np.pi, 3):
        wave = np.sin(5 * x + 3 * y + phase) + 0.5 * np.sin(11 * y - 7 * x + 2 * phase)
        channels.append(wave)
    scene = np.stack(channels, axis=-1) * 40 + 120
    blobs = np.sin(23 * x) * np.sin(17 * y)  # a grid of soft-edged patches, like objects
    scene += np.clip(blobs * 6, -1, 1)[..., None] * rng.uniform(-60, 60, 3).astype(np.float32)
    scene += rng.normal(0, 3, scene.shape).astype(np.float32)
    return np.clip(scene, 0, 247).astype(np.uint8)


def _triangle(k: int, span: int) -> int:
    """0, 1, ..., span, span - 1, ..., 0, 1, ...: moves by one every step."""
    return span - abs(k % (2 * span) - span)


def _describe(out: object) -> str:
    if not isinstance(out, np.ndarray):
        return type(out).__name__
    flags = ("" if out.flags.c_contiguous else " non-contiguous") + (
        "" if out.flags.writeable else " read-only"
    )
    return f"{out.dtype}{list(out.shape)}{flags}"
