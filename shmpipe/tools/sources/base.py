"""What every camera source is: a frame written into the caller's buffer, and when it was captured.

Real sources keep the newest frame from a capture thread (`ThreadedSource`), so `read_into` never
waits for the device; it converts or copies that frame into `out` once and says when it was
captured and whether it is a new frame (`Capture.sequence`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from shmpipe.errors import ConfigError, SourceError

JOIN_TIMEOUT_S = 2.0  # how long close() waits for a capture thread stuck in the driver


_WALL_AT_START = time.time() - time.monotonic()


def capture_clock() -> float:
    """Seconds since the epoch as the wall clock read when this process started, advanced by
    the monotonic clock since: a wall-clock step while recording (NTP, a manual `date -s`)
    shows in no capture time, gap or rate."""
    return _WALL_AT_START + time.monotonic()


@dataclass(frozen=True)
class Capture:
    """What read_into delivered: `time` is capture_clock() when the frame was captured (as
    near the sensor as we can tell); `sequence` counts distinct frames from 0, so the same
    number again means the camera had no new frame since the last read_into."""

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

    def describe(self) -> str:
        """What it delivers, for the recording's summary: "WIDTHxHEIGHT" (cameras say more)."""
        return f"{self.shape[1]}x{self.shape[0]}"

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


def _describe(out: object) -> str:
    if not isinstance(out, np.ndarray):
        return type(out).__name__
    flags = ("" if out.flags.c_contiguous else " non-contiguous") + (
        "" if out.flags.writeable else " read-only"
    )
    return f"{out.dtype}{list(out.shape)}{flags}"
