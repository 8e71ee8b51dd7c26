"""One camera's way into its ring, as the control process sees it: stage a frame, then commit.

Images are checked and converted straight into a ring slot (shmpipe.recorder.image_input), or
filled in place through `loan`.

`stage` writes the frame where it will live: the next free ring slot, or, when the ring is full,
the overflow backlog (a private copy in memory while the backlog's memory allowance lasts, then a
raw file on disk: never dropped). Nothing is visible to anyone until `commit`, which cannot fail
and allocates nothing, so add_frame can stage every camera first and commit all or none. `drain`
moves backlogged frames into slots as the encoder frees them, oldest first.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.ring import ENCODER_READER, STATS_READER, RingWriter
from shmpipe.recorder.image_input import frame_writer

log = logging.getLogger("shmpipe")
MAX_SPARE_BUFFERS = 32


@dataclass(frozen=True, slots=True)
class InSlot:
    """Staged in the ring slot claimed for it."""


@dataclass(frozen=True, slots=True)
class InMemory:
    """Staged in a private buffer, to wait in the backlog."""

    buffer: np.ndarray


@dataclass(frozen=True, slots=True)
class Spilled:
    """Staged at `offset` of the camera's spill file, to wait in the backlog."""

    offset: int


IN_SLOT = InSlot()  # one instance: staging into a slot allocates nothing
Staged = InSlot | InMemory | Spilled  # where stage() put a frame, for commit()
# a frame for stage(): None (the loaned buffer), an array to copy as is, or a converting writer
Source = np.ndarray | Callable[[np.ndarray], None] | None


def _put(source: np.ndarray | Callable[[np.ndarray], None], out: np.ndarray) -> None:
    if source.__class__ is np.ndarray:
        np.copyto(out, source)
    else:
        source(out)


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
        # since start(), never reset: a take counts its own from what they were when it opened
        self.backlogged = 0  # frames that went through the backlog
        self.spilled = 0  # of which on disk
        self._spilled_waiting = 0  # backlogged frames in the spill file now
        self._loan: tuple[np.ndarray, Staged] | None = None  # (buffer, where it is staged)
        self._shape, self._dtype = ring.shape, ring.dtype  # what source_of copies as is

    # -- add_frame -------------------------------------------------------------------------
    def loan(self) -> np.ndarray:
        """A writable HxWxC buffer (the ring's dtype) to fill in place: the next free ring slot,
        or a backlog buffer while frames wait. stage() of that very array then copies nothing."""
        self._end_loan()
        if self.backlog:
            self.drain()
        slot = None if self.backlog else self.ring.claim()
        if slot is not None:
            self._loan = (slot, IN_SLOT)  # claim() gives a view of its own
        else:
            buffer = self._spare()
            self._loan = (buffer[...], InMemory(buffer))  # a view: the spare stays writable
        return self._loan[0]

    def end_loan(self) -> None:
        """End the loan, if any (the episode was discarded; its backlog flows on)."""
        self._end_loan()

    def _end_loan(self) -> tuple[np.ndarray, Staged] | None:
        """End the loan, if any: its array turns read-only, so a write after add_frame (which
        would change a frame already handed over) raises instead of corrupting it."""
        loan, self._loan = self._loan, None
        if loan is not None:
            loan[0].flags.writeable = False
        return loan

    def source_of(self, image: object) -> Source:
        """How `image` gets into place, for stage(): None if it is this camera's loaned buffer
        (it is there already), the image itself if it is an array of the ring's shape and
        dtype (copied as it is: the usual case, checked with two compares), else a function
        writing it, converted, into a slot (FrameError if it can't)."""
        loan = self._loan
        if loan is not None and image is loan[0]:
            return None
        if image.__class__ is np.ndarray and image.dtype is self._dtype:
            if image.shape == self._shape:
                return image
        return frame_writer(self.name, image, self.ring.shape, self.ring.dtype)

    def stage(self, source: Source) -> Staged:
        """Put the frame of `source` (see source_of) in the next free slot, or the backlog;
        returns where it is, for `commit`. Staging changes nothing that anyone else can see
        (but first moves earlier, committed frames from the backlog into free slots) and ends
        any loan."""
        loan = self._end_loan() if self._loan is not None else None
        if source is None:
            if loan[1] is IN_SLOT:
                return IN_SLOT
            buffer = loan[1].buffer
        else:
            if self.backlog:
                self.drain()
            if not self.backlog:
                slot = self.ring.claim()
                if slot is not None:
                    _put(source, slot)
                    return IN_SLOT
            buffer = self._spare()
            _put(source, buffer)
        if self._budget.used + self.ring.frame_bytes <= self._budget.limit:
            return InMemory(buffer)
        if not self._spill_ok():
            return InMemory(buffer)  # no disk either: memory past the allowance, never a loss
        try:
            written = os.pwrite(self._spill_fd, buffer, self._spill_end)  # counted at commit
            if written != buffer.nbytes:
                raise OSError(f"wrote {written} of {buffer.nbytes} bytes (disk full?)")
        except OSError as exc:
            log.warning("camera %r: spilling the backlog to %s failed (%s); keeping frames in "
                        "memory", self.name, self._spill_path, exc)  # fmt: skip
            self._spill_failed = True
            return InMemory(buffer)
        return Spilled(self._spill_end)

    def commit(self, staged: Staged, take: int, frame_index: int) -> None:
        """Make the staged frame visible: published in its slot, or queued in the backlog.
        Rings no doorbell: the caller wakes the readers once for all cameras
        (Session.wake_readers), after the whole frame is published."""
        if staged is IN_SLOT:
            self.ring.publish(take, frame_index)
            return
        if isinstance(staged, InMemory):
            if self._spares and staged.buffer is self._spares[-1]:
                self._spares.pop()
            self._budget.used += self.ring.frame_bytes
            self.backlog.append(_Waiting(staged.buffer, -1, take, frame_index))
        else:
            self._spill_end = staged.offset + self.ring.frame_bytes
            self.spilled += 1
            self._spilled_waiting += 1
            self.backlog.append(_Waiting(None, staged.offset, take, frame_index))
        self.backlogged += 1

    def _spare(self) -> np.ndarray:
        """A backlog buffer: one a drained frame left (its pages already mapped), else new."""
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

    def added(self) -> int:
        """Frames committed since start(): in the ring, or waiting in the backlog."""
        return self.ring.write_seq + len(self.backlog)

    def encoded(self) -> int:
        """Frames the encoder has read since start()."""
        return self.ring.progress(ENCODER_READER)

    def clear(self) -> None:
        """Forget the backlog (the episode was discarded) and any loan."""
        self._end_loan()
        self._budget.used -= self.backlog_bytes()
        for item in self.backlog:  # the next episode's backlog reuses their pages
            if item.frame is not None and len(self._spares) < MAX_SPARE_BUFFERS:
                self._spares.append(item.frame)
        self.backlog.clear()
        self._spill_end = self._spilled_waiting = 0
        self._spill_failed = False

    def backlog_bytes(self) -> int:
        """Bytes of backlogged frames held in memory (the others wait in the spill file)."""
        return (len(self.backlog) - self._spilled_waiting) * self.ring.frame_bytes

    def wake(self) -> None:
        """Ring the doorbells of the camera's readers that sleep (a busy one sees new frames);
        for frames moved from the backlog, off add_frame's usual path."""
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
        """Drop the backlog and the spill file; the ring and doorbells belong to whoever made
        them (shmpipe.recorder.session closes them after the feed)."""
        self.clear()
        self._close_spill()
