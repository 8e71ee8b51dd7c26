"""One camera's way into its ring, as the control process sees it: stage a frame, then commit.

HWC uint8 RGB images are copied straight into a ring slot (or filled in place through `loan`);
CHW uint8 and float arrays in [0, 1] are converted on the way in, as LeRobot accepts them. A
depth camera ((h, w, 1)) takes uint16 millimetres, (h, w) or (h, w, 1), copied as they are.

`stage` writes the frame where it will live: the next free ring slot, or, when the ring is full,
the overflow backlog (a private copy in memory while the backlog's memory allowance lasts, then a
raw file on disk: never dropped). Nothing is visible to anyone until `commit`, which cannot fail
and allocates nothing, so add_frame can stage every camera first and commit all or none. `drain`
moves backlogged frames into slots as the encoder frees them, oldest first.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shmpipe.doorbell import Doorbell
from shmpipe.errors import FrameError
from shmpipe.ring import ENCODER_READER, STATS_READER, RingWriter

log = logging.getLogger("shmpipe")
MAX_SPARE_BUFFERS = 32
_IN_SLOT = object()  # stage() token: the frame is in the claimed ring slot
_UINT8 = np.dtype(np.uint8)


class BacklogBudget:
    """Bytes of backlog copies all cameras may keep in memory together."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0


class _Waiting:
    """A backlogged frame: in memory (`frame`) or at `offset` of the camera's spill file."""

    __slots__ = ("frame", "offset", "take", "frame_index")

    def __init__(self, frame, offset, take, frame_index) -> None:
        self.frame, self.offset, self.take, self.frame_index = frame, offset, take, frame_index


class CameraFeed:
    def __init__(self, name: str, ring: RingWriter, bell: Doorbell, stats_bell: Doorbell,
                 budget: BacklogBudget, spill_path: Path) -> None:  # fmt: skip
        self.name, self.ring, self.bell, self.stats_bell = name, ring, bell, stats_bell
        self._budget, self._spill_path = budget, spill_path
        self._spill_fd: int | None = None
        self._spill_failed = False
        self._spill_end = 0
        self.backlog: deque[_Waiting] = deque()
        self._spares: list[np.ndarray] = []
        self.overflowed = 0  # frames of this episode that went through the backlog
        self.spilled = 0  # of which on disk
        self._spilled_waiting = 0  # backlogged frames in the spill file now
        self.behind_warned = False
        self._loan: tuple[np.ndarray, object] | None = None  # (buffer, its stage() token)

    # -- add_frame -------------------------------------------------------------------------
    def loan(self) -> np.ndarray:
        """A writable HxWxC buffer (the ring's dtype) to fill in place: the next free ring slot,
        or a backlog buffer while frames wait. stage() of that very array then copies nothing."""
        if self.backlog:
            self.drain()
        slot = None if self.backlog else self.ring.claim()
        if slot is not None:
            self._loan = (slot, _IN_SLOT)
        else:
            buffer = self._spare()
            self._loan = (buffer, buffer)
        return self._loan[0]

    def writer_for(self, image: object) -> Callable[[np.ndarray], None] | None:
        """How `image` gets into place: None if it is this camera's loaned buffer (it is there
        already), else a function writing it, converted, into a slot (FrameError if it can't)."""
        if self._loan is not None and image is self._loan[0]:
            return None
        return frame_writer(self.name, image, self.ring.shape, self.ring.dtype)

    def stage(self, write) -> object:
        """Call `write(out)` with the frame's destination (an HxWxC array), or, with
        `write` None, take the loaned buffer as it is; returns the token `commit` takes. Staging
        changes nothing that anyone else can see (but first moves earlier, committed frames
        from the backlog into free slots) and ends any loan."""
        loan, self._loan = self._loan, None
        if write is None:
            if loan[1] is _IN_SLOT:
                return _IN_SLOT
            buffer = loan[0]
        else:
            if self.backlog:
                self.drain()
            if not self.backlog:
                slot = self.ring.claim()
                if slot is not None:
                    write(slot)
                    return _IN_SLOT
            buffer = self._spare()
            write(buffer)
        if self._budget.used + self.ring.frame_bytes <= self._budget.limit:
            return buffer
        if not self._spill_ok():
            return buffer  # no disk either: memory beyond the allowance, never a lost frame
        try:
            written = os.pwrite(self._spill_fd, buffer, self._spill_end)  # counted at commit
            if written != buffer.nbytes:
                raise OSError(f"wrote {written} of {buffer.nbytes} bytes (disk full?)")
        except OSError as exc:
            log.warning("camera %r: spilling the backlog to %s failed (%s); keeping frames in "
                        "memory", self.name, self._spill_path, exc)  # fmt: skip
            self._spill_failed = True
            return buffer
        return self._spill_end

    def commit(self, staged, take: int, frame_index: int) -> None:
        """Make the staged frame visible: published in its slot, or queued in the backlog."""
        if staged is _IN_SLOT:
            self.ring.publish(take, frame_index)
            self.wake()
            return
        if isinstance(staged, np.ndarray):
            if self._spares and staged is self._spares[-1]:
                self._spares.pop()
            self._budget.used += self.ring.frame_bytes
            self.backlog.append(_Waiting(staged, -1, take, frame_index))
        else:
            self._spill_end = staged + self.ring.frame_bytes
            self.spilled += 1
            self._spilled_waiting += 1
            self.backlog.append(_Waiting(None, staged, take, frame_index))
        self.overflowed += 1

    def _spare(self) -> np.ndarray:
        return self._spares[-1] if self._spares else np.empty(self.ring.shape, self.ring.dtype)

    # -- backlog ---------------------------------------------------------------------------
    def drain(self) -> int:
        """Move backlogged frames into free slots, oldest first; returns how many moved."""
        moved = 0
        while self.backlog:
            slot = self.ring.claim()
            if slot is None:
                break
            item = self.backlog.popleft()
            if item.frame is not None:
                np.copyto(slot, item.frame)
                self._budget.used -= self.ring.frame_bytes
                if len(self._spares) < MAX_SPARE_BUFFERS:
                    self._spares.append(item.frame)
            else:
                os.preadv(self._spill_fd, [slot.reshape(-1)], item.offset)
                self._spilled_waiting -= 1
            self.ring.publish(item.take, item.frame_index)
            moved += 1
        if moved:
            self.wake()
            if not self._spilled_waiting:
                self._spill_end = 0  # the file's frames are all in the ring: reuse it
        return moved

    def clear(self) -> None:
        """Forget the backlog (the episode was discarded), any loan and the episode's counters."""
        self._loan = None
        self._budget.used -= self.backlog_bytes()
        self.backlog.clear()
        self._spill_end = self._spilled_waiting = 0
        self._spill_failed = False
        self.overflowed = self.spilled = 0
        self.behind_warned = False

    def backlog_bytes(self) -> int:
        """Bytes of backlogged frames held in memory (the others wait in the spill file)."""
        return (len(self.backlog) - self._spilled_waiting) * self.ring.frame_bytes

    def wake(self) -> None:
        """Ring the doorbells of the camera's readers that sleep (a busy one sees new frames)."""
        if self.ring.wake_needed(ENCODER_READER):
            self.bell.ring()
        if self.ring.wake_needed(STATS_READER):
            self.stats_bell.ring()

    def _spill_ok(self) -> bool:
        if self._spill_failed:
            return False
        if self._spill_fd is None:
            try:
                self._spill_path.parent.mkdir(parents=True, exist_ok=True)
                self._spill_fd = os.open(self._spill_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                log.warning("camera %r: cannot spill the backlog to %s (%s)", self.name,
                            self._spill_path, exc)  # fmt: skip
                self._spill_failed = True
                return False
        return True

    def _close_spill(self) -> None:
        if self._spill_fd is not None and not self._spilled_waiting:
            os.close(self._spill_fd)
            self._spill_fd = None
            self._spill_path.unlink(missing_ok=True)

    def close(self) -> None:
        self.clear()
        self._close_spill()
        self.ring.close()
        self.bell.close()


def frame_writer(name: str, image, shape: tuple[int, int, int],
                 dtype: np.dtype = _UINT8) -> Callable[[np.ndarray], None]:  # fmt: skip
    """A function that writes `image` into an HWC array of `shape` and `dtype` (a ring slot),
    with whatever conversion it needs; raises FrameError for anything it cannot convert."""
    if dtype != _UINT8:
        return _depth_writer(name, image, shape)
    if not isinstance(image, np.ndarray):
        raise FrameError(
            f"camera {name!r}: expected a numpy array of shape {shape} (HWC uint8), "
            f"got {type(image).__name__}"
        )
    h, w, c = shape
    if image.shape == (h, w, c):
        src = image
    elif image.shape == (c, h, w):
        src = image.transpose(1, 2, 0)
    else:
        raise FrameError(
            f"camera {name!r}: expected shape {(h, w, c)} (HWC) or {(c, h, w)} (CHW), "
            f"got {image.shape}"
        )
    if image.dtype == np.uint8:
        return lambda out: np.copyto(out, src)
    if image.dtype == np.uint16:
        raise FrameError(
            f"camera {name!r}: got a uint16 image for an RGB camera of shape {shape}; expected "
            "uint8 (or float in [0, 1]); depth cameras are declared with shape (h, w, 1)"
        )
    if image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise FrameError(f"camera {name!r}: float image contains NaN or inf")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0.0 or hi > 1.0:
            raise FrameError(
                f"camera {name!r}: float images must lie in [0, 1], got values in [{lo}, {hi}]"
            )
        return lambda out: np.copyto(out, np.rint(src * 255.0), casting="unsafe")
    raise FrameError(
        f"camera {name!r}: expected dtype uint8 (or float in [0, 1]), got {image.dtype}"
    )


def _depth_writer(name: str, image, shape: tuple[int, int, int]) -> Callable[[np.ndarray], None]:
    """frame_writer of a depth camera: uint16 millimetres, (h, w) or (h, w, 1), copied."""
    h, w, _ = shape
    if not isinstance(image, np.ndarray) or image.dtype != np.uint16:
        got = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise FrameError(
            f"camera {name!r}: a depth camera expects uint16 millimetres of shape {(h, w)} or "
            f"{(h, w, 1)}, got {got}"
        )
    if image.shape not in ((h, w), (h, w, 1)):
        raise FrameError(
            f"camera {name!r}: a depth camera expects shape {(h, w)} or {(h, w, 1)}, "
            f"got {image.shape}"
        )
    src = image.reshape(h, w, 1)
    return lambda out: np.copyto(out, src)


class RateMeter:
    """Frames per second of two counters over the last few seconds, for status()."""

    def __init__(self, window_s: float = 3.0) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int, int]] = deque()

    def rates(self, written: int, encoded: int) -> tuple[float, float]:
        now = time.monotonic()
        self.samples.append((now, written, encoded))
        while len(self.samples) > 2 and now - self.samples[1][0] > self.window_s:
            self.samples.popleft()
        t0, w0, e0 = self.samples[0]
        span = now - t0
        if span < 0.2:
            return 0.0, 0.0
        return (written - w0) / span, (encoded - e0) / span
