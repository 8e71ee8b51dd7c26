"""The "opencv:" source: a camera (index or /dev/videoN) or a video file through cv2.VideoCapture.

A camera is asked for its pixel format first (MJPG unless told: YUYV needs the whole USB 2.0
bus for one 640x480 camera at 30 fps, LeRobot #4082), then size and fps; `describe()` says what
it accepted.
The capture thread reads each frame into one of two private BGR buffers and read_into converts
the newest one to RGB straight into the caller's buffer. OpenCV silently returns a new array when
the one it was given does not fit, so both calls check `result is buffer` and fall back to a copy.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from shmpipe.errors import ConfigError
from shmpipe.tools.sources.base import Capture, SourceError, ThreadedSource, capture_clock

OPEN_TIMEOUT_S = 5.0  # a FIFO with no writer, a network stream or a camera that never answers
FIRST_FRAME_TIMEOUT_S = 3.0  # cameras may deliver nothing (or empty frames) just after opening
MAX_FAILED_READS = 5  # in a row, before a camera counts as gone
DEFAULT_FOURCC = "MJPG"  # what USB cameras send compressed: 3 cameras at 30 fps fit on USB 2.0


class OpenCVSource(ThreadedSource):
    """`device` is a camera index or a path (/dev/videoN, or a video file: looped and paced at
    fps like a camera). `size` and `fps` are asked of a camera; `shape` is what it delivers.
    `reads_in_place` / `converts_in_place` turn False once OpenCV ignored a given buffer."""

    def __init__(self, spec: str, device: int | str, fps: int, size: tuple[int, int] | None,
                 fourcc: str | None = None) -> None:  # fmt: skip
        self.spec, self._cv2 = spec, _import_cv2(spec)
        if isinstance(device, str) and not Path(device).exists():
            raise SourceError(f"{spec}: no such camera device or video file {device!r}")
        self._is_file = isinstance(device, str) and Path(device).is_file()
        if self._is_file and (size or fourcc):
            raise ConfigError(f"{spec}: a size or pixel format is for cameras; {device!r} is "
                              "a video file, read at its own size")  # fmt: skip
        self._cap = _open_within(self._cv2, spec, device, OPEN_TIMEOUT_S)
        self._asked = (size, fourcc)
        if not self._is_file:
            self._ask_for(fps, size, fourcc or DEFAULT_FOURCC)
        first = self._first_frame()
        self.shape = first.shape
        self.reads_in_place = self.converts_in_place = True
        self._buffers = (first, np.empty_like(first))  # the thread fills one, read_into the other
        self._lock = threading.Lock()  # held while read_into converts the current buffer
        self._current = (0, Capture(capture_clock(), 0))  # (buffer index, its capture)
        self._failed_reads = 0
        self._start(fps)

    def _ask_for(self, fps: int, size: tuple[int, int] | None, fourcc: str) -> None:
        """Format first: V4L2 offers sizes and rates per format, so setting it last could undo
        the size. A camera that lacks the format keeps its own (describe() tells)."""
        cv2 = self._cv2
        self._cap.set(cv2.CAP_PROP_FOURCC, fourcc_code(fourcc))
        if size is not None:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[1])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[0])
        self._cap.set(cv2.CAP_PROP_FPS, fps)

    def _first_frame(self) -> np.ndarray:
        deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
        while True:
            ok, image = self._cap.read()
            if ok and image is not None and image.size:
                break
            if self._is_file or time.monotonic() > deadline:
                self._cap.release()
                raise SourceError(f"{self.spec}: opened, but no frame came within "
                                  f"{FIRST_FRAME_TIMEOUT_S:g} s")  # fmt: skip
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            self._cap.release()
            raise SourceError(f"{self.spec}: expected 3-channel uint8 frames, got "
                              f"{image.dtype}{list(image.shape)}")  # fmt: skip
        return np.ascontiguousarray(image)

    def describe(self) -> str:
        """What the camera delivers, e.g. "640x480 MJPG 30 fps", and what it refused of what
        the spec asked for."""
        if self._is_file:
            return super().describe()
        height, width, _ = self.shape
        fourcc = fourcc_text(int(self._cap.get(self._cv2.CAP_PROP_FOURCC)))
        fps = self._cap.get(self._cv2.CAP_PROP_FPS)
        text = f"{width}x{height} {fourcc or '?'}" + (f" {fps:g} fps" if fps > 0 else "")
        size, asked_fourcc = self._asked
        refused = []
        if size and size != (height, width):
            refused.append(f"{size[1]}x{size[0]}")
        if asked_fourcc and asked_fourcc != fourcc:
            refused.append(asked_fourcc)
        return text + (f" (the camera refused {' '.join(refused)})" if refused else "")

    def _capture_next(self) -> None:
        back = 1 - self._current[0]  # only this thread changes _current; read_into never reads back
        captured = self._read(self._buffers[back])
        if captured is None:
            self._stop.wait(1 / self.fps)
            return
        sequence = self._current[1].sequence + 1
        if self._is_file:  # a file's frame is "captured" when it is due
            self._sleep_until_due(sequence)
            captured = capture_clock()
        capture = Capture(captured, sequence)
        with self._lock:
            self._current = (back, capture)

    def _read(self, buffer: np.ndarray) -> float | None:
        """Read the next frame into `buffer` and return when read() returned (a camera's frame
        has just landed then); None after a failed read that may be retried."""
        ok, result = self._cap.read(image=buffer)
        captured = capture_clock()
        if not ok and self._is_file:  # end of the file: start again
            self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
            ok, result = self._cap.read(image=buffer)
            captured = capture_clock()
        if not ok:
            self._failed_reads += 1
            if self._is_file or self._failed_reads >= MAX_FAILED_READS:
                raise SourceError(f"{self.spec}: no frame after {self._failed_reads} reads")
            return None
        self._failed_reads = 0
        if result is not buffer:
            if result.shape != buffer.shape or result.dtype != buffer.dtype:
                raise SourceError(f"{self.spec}: frames changed from {list(buffer.shape)} to "
                                  f"{result.dtype}{list(result.shape)}")  # fmt: skip
            self.reads_in_place = False
            np.copyto(buffer, result)
        return captured

    def _fill(self, out: np.ndarray) -> Capture:
        self._check_running()
        with self._lock:
            index, capture = self._current
            result = self._cv2.cvtColor(self._buffers[index], self._cv2.COLOR_BGR2RGB, dst=out)
            if result is not out:
                self.converts_in_place = False
                np.copyto(out, result)
        return capture

    def _release(self) -> None:
        if not self._thread.is_alive():  # never pull the device from under a stuck read()
            self._cap.release()


def _open_within(cv2, spec: str, device: int | str, timeout: float):
    """cv2.VideoCapture(device), opened in a helper thread: OpenCV's open cannot be interrupted
    (on a FIFO it waits for a writer forever), so the caller waits at most `timeout` seconds
    (Ctrl-C still works meanwhile). A capture that opens too late is released by its thread."""
    result: list = []  # the capture, or "late" once the caller gave up
    lock = threading.Lock()

    def open_capture() -> None:
        cap = cv2.VideoCapture(device)
        with lock:
            if result:  # the caller gave up waiting
                cap.release()
            else:
                result.append(cap)

    threading.Thread(target=open_capture, name=f"open {spec}", daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            if result:
                break
        time.sleep(0.01)
    with lock:
        if not result:
            result.append("late")
            raise SourceError(f"{spec}: opening {device!r} did not finish within {timeout:g} s "
                              "(a FIFO with no writer, or a device that does not answer)")
    cap = result[0]
    if not cap.isOpened():
        cap.release()
        what = f"camera {device}" if isinstance(device, int) else repr(device)
        raise SourceError(f"{spec}: OpenCV cannot open {what} (OPENCV_LOG_LEVEL=INFO shows "
                          "OpenCV's own messages)")  # fmt: skip
    return cap


def fourcc_code(text: str) -> int:
    """A four-character pixel format ("MJPG") as OpenCV's CAP_PROP_FOURCC number."""
    return sum(ord(c) << 8 * i for i, c in enumerate(text.ljust(4)[:4]))


def fourcc_text(code: int) -> str:
    return "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)).strip("\0 ")


def _import_cv2(spec: str):
    """cv2, with OpenCV's own log lines (and its FFmpeg's) off unless OPENCV_LOG_LEVEL is set:
    a camera that does not open printed WARN lines before our message that names it."""
    quiet = "OPENCV_LOG_LEVEL" not in os.environ
    if quiet:
        os.environ["OPENCV_LOG_LEVEL"] = "SILENT"  # read when cv2 is first imported
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    try:
        import cv2
    except ImportError as exc:
        raise ConfigError(
            f"{spec}: the opencv source needs OpenCV: pip install 'shmpipe[camera]' ({exc})"
        ) from exc
    if quiet:  # cv2 may have been imported before: set the level it has now too
        utils_logging = getattr(getattr(cv2, "utils", None), "logging", None)  # OpenCV 5
        set_level = getattr(cv2, "setLogLevel", None) or getattr(utils_logging, "setLogLevel", None)
        if set_level is not None:
            set_level(0)  # LOG_LEVEL_SILENT
    return cv2
