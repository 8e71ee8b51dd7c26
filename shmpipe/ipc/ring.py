"""Shared-memory frame ring: one per camera, one writer (the control process), its readers.

A slot holds one raw HxWxC frame (uint8 RGB, or uint16 depth: the itemsize is in the ring's
header) and a header: its sequence number, take and frame index.
Frame `seq` lives in slot `seq % capacity`. Who owns a slot is carried by counters,
each with exactly one writer:
- `write_seq` (writer): frames < write_seq are published; readers may read them in place.
- `released[r]` (reader r): reader r is done with every frame < released[r].
The writer may fill slot `seq % capacity` only once every reader has released `seq - capacity`,
so a slot is never overwritten while a reader may hold it: a read is neither torn nor stale.
A `RingPeeker` (the preview) is no reader: it holds nothing, and checks its copies instead.
A take numbers every episode ever opened (a cancelled episode's index is reused, its take never
is), so readers key their work on the take. Apart from the frames, the header (ipc.ring_header)
keeps each reader's health (a heartbeat the watchdog reads) and sleep flag (its doorbell is rung
only while it sleeps: the writer rings an idle stats reader, which relays to a sleeping encoder,
workers/stats.py), each in a section of its own. A ring is made for READERS (the encoder and
the stats worker) unless told otherwise.
Counters are aligned 8-byte words on separate cache lines; x86-64 keeps stores in order (TSO).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shmpipe.ipc import ring_header as hdr
from shmpipe.ipc.ring_header import HEADER_BYTES, W_HIGH_WATER, W_WRITE_SEQ
from shmpipe.ipc.segment import Segment

ENCODER_READER = 0
STATS_READER = 1
READERS = (ENCODER_READER, STATS_READER)

_H_SEQ, _H_TAKE, _H_FRAME_INDEX = range(3)  # words of a slot header
_SLOT_WORDS = 4  # (one spare: headers stay 32-byte aligned)


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def ring_bytes(capacity: int, shape: tuple[int, int, int], itemsize: int = 1) -> int:
    """Size of the shared-memory segment of a ring of `capacity` frames of `shape`."""
    return _data_offset(capacity) + capacity * _align(int(np.prod(shape)) * itemsize, 64)


def _data_offset(capacity: int) -> int:
    return _align(HEADER_BYTES + capacity * _SLOT_WORDS * 8, 4096)


class _RingMemory:
    """The mapped ring: counters and slot headers as memoryviews (one aligned access each,
    without numpy's scalar round trip), frames as one numpy array of slots."""

    def __init__(self, segment: Segment) -> None:
        self._segment = segment
        self.name = segment.name
        whole = memoryview(segment.buffer)
        self._views = [whole]
        self._ctrl = self._cast(whole[:HEADER_BYTES], "q")
        if self._ctrl[hdr.W_MAGIC] != hdr.MAGIC:
            raise RuntimeError(f"shared memory {segment.name} is not a shmpipe frame ring")
        self.capacity = int(self._ctrl[hdr.W_CAPACITY])
        self.shape = tuple(int(self._ctrl[w]) for w in (hdr.W_HEIGHT, hdr.W_WIDTH, hdr.W_CHANNELS))
        self.readers = int(self._ctrl[hdr.W_READERS])
        self._released = self._ctrl[hdr.released_words(self.readers)]  # min(): oldest held
        self._views.append(self._released)
        headers = whole[HEADER_BYTES : HEADER_BYTES + self.capacity * _SLOT_WORDS * 8]
        self._words = self._cast(headers, "q")
        h, w, c = self.shape
        self.dtype = np.dtype(f"u{int(self._ctrl[hdr.W_ITEMSIZE])}")
        size = self.dtype.itemsize
        self.frame_bytes = h * w * c * size
        self._frames = np.ndarray(
            (self.capacity, h, w, c),
            self.dtype,
            segment.buffer,
            _data_offset(self.capacity),
            strides=(int(self._ctrl[hdr.W_SLOT_BYTES]), w * c * size, c * size, size),
        )

    def _cast(self, view: memoryview, fmt: str) -> memoryview:
        cast = view.cast(fmt)
        self._views += [view, cast]
        return cast

    @property
    def write_seq(self) -> int:
        return self._ctrl[W_WRITE_SEQ]

    def released(self, reader: int) -> int:
        return self._ctrl[hdr.released(reader)]

    def progress(self, reader: int) -> int:
        """Frames `reader` has read (it may still hold some of them)."""
        return max(self._ctrl[hdr.progress(reader)], self._ctrl[hdr.released(reader)])

    def heartbeat(self, reader: int) -> tuple[int, bool]:
        """(heartbeat count, flushing) of `reader` (ring_header's health section)."""
        return self._ctrl[hdr.heartbeat(reader)], bool(self._ctrl[hdr.flushing(reader)])

    def sleeping(self, reader: int) -> bool:
        """True while `reader` says it sleeps (or is about to) and nobody has rung it yet."""
        return bool(self._ctrl[hdr.asleep(reader)])

    def wake_needed(self, reader: int) -> bool:
        """True (once) if `reader` went to sleep: the caller must then ring its doorbell.
        Called after publishing (a reader sets its flag, then looks for frames, then sleeps),
        so a sleeper that missed the frame is always seen; should the two sides still race,
        the reader's sleep ends at its timeout."""
        word = hdr.asleep(reader)
        if not self._ctrl[word]:
            return False
        self._ctrl[word] = 0
        return True

    def slots_used(self) -> int:
        """Frames published that some reader has not released yet."""
        return self._ctrl[W_WRITE_SEQ] - min(self._released)

    def close(self) -> None:
        self._ctrl = self._words = self._frames = self._released = None
        for view in reversed(self._views):
            view.release()
        self._views = []
        self._segment.close()


class RingWriter(_RingMemory):
    """The control process's side: `claim()` lends the next free slot, `publish()` hands it on."""

    @classmethod
    def create(cls, name: str, capacity: int, shape: tuple[int, int, int],
               dtype: np.dtype | type = np.uint8,
               readers: int = len(READERS)) -> RingWriter:  # fmt: skip
        """Make the segment (its memory reserved, so a full /dev/shm fails here, not later);
        slots hold unsigned `dtype` (uint8 RGB, uint16 depth), each frame for `readers`."""
        if capacity < 2:
            raise ValueError(f"a ring needs at least 2 slots, got {capacity}")
        hdr.check_readers(readers)
        itemsize = np.dtype(dtype).itemsize
        segment = Segment.create(name, ring_bytes(capacity, shape, itemsize))
        try:
            ctrl = np.ndarray((HEADER_BYTES // 8,), np.int64, segment.buffer, 0)
            ctrl[[hdr.W_CAPACITY, hdr.W_HEIGHT, hdr.W_WIDTH, hdr.W_CHANNELS]] = (capacity, *shape)
            ctrl[hdr.W_SLOT_BYTES] = _align(int(np.prod(shape)) * itemsize, 64)
            ctrl[hdr.W_ITEMSIZE] = itemsize
            ctrl[hdr.W_READERS] = readers
            headers = np.ndarray((capacity, _SLOT_WORDS), np.int64, segment.buffer, HEADER_BYTES)
            headers[:, _H_SEQ] = -1
            ctrl[hdr.W_MAGIC] = hdr.MAGIC
            del ctrl, headers
            ring = cls(segment)
            # Touch every page now: a first write to a tmpfs page costs ~0.8 ms per 480x640
            # frame, which would otherwise land in add_frame during the first pass.
            ring._frames[...] = 0
        except BaseException:
            segment.unlink()
            segment.close()
            raise
        return ring

    def unlink(self) -> None:
        """Remove the ring's name (the creator's call, beside close): see ipc.segment."""
        self._segment.unlink()

    def claim(self) -> np.ndarray | None:
        """The next free slot's frame memory (HxWxC, contiguous) to fill, or None if all are
        held. Claiming changes nothing shared: a claimed slot that is never published is free."""
        if self.slots_used() >= self.capacity:
            return None
        return self._frames[self._ctrl[W_WRITE_SEQ] % self.capacity]

    def publish(self, take: int, frame_index: int) -> None:
        """Hand the claimed slot, now filled, to every reader."""
        ctrl = self._ctrl
        seq = ctrl[W_WRITE_SEQ]
        base = (seq % self.capacity) * _SLOT_WORDS
        self._words[base + _H_TAKE] = take
        self._words[base + _H_FRAME_INDEX] = frame_index
        self._words[base + _H_SEQ] = seq  # the slot's own seq last: it vouches for the rest
        ctrl[W_WRITE_SEQ] = seq + 1
        used = seq + 1 - min(self._released)
        if used > ctrl[W_HIGH_WATER]:
            ctrl[W_HIGH_WATER] = used

    @property
    def high_water(self) -> int:
        """Most slots ever in use at once (reset with `reset_high_water`)."""
        return self._ctrl[W_HIGH_WATER]

    def reset_high_water(self) -> None:
        self._ctrl[W_HIGH_WATER] = self.slots_used()


class Slot:
    """A published frame as a reader sees it; `frame` is a view into the ring: drop it before
    releasing the slot."""

    __slots__ = ("seq", "take", "frame_index", "frame")

    def __init__(self, seq: int, take: int, frame_index: int, frame: np.ndarray) -> None:
        self.seq, self.take, self.frame_index, self.frame = seq, take, frame_index, frame


class RingReader(_RingMemory):
    """One reader's side: read frames in place, release them in order, sleep and beat."""

    def __init__(self, segment: Segment, reader: int) -> None:
        super().__init__(segment)
        if not 0 <= reader < self.readers:
            name, readers = segment.name, self.readers
            self.close()
            raise ValueError(f"ring {name} has readers 0..{readers - 1}, not {reader}")
        self.reader = reader
        self._w_released, self._w_progress = hdr.released(reader), hdr.progress(reader)
        self._w_heartbeat, self._w_flushing = hdr.heartbeat(reader), hdr.flushing(reader)
        self._w_asleep = hdr.asleep(reader)

    @classmethod
    def attach(cls, name: str, reader: int) -> RingReader:
        return cls(Segment.attach(name), reader)

    def unread(self, seq: int) -> bool:
        return seq < self._ctrl[W_WRITE_SEQ]

    def read(self, seq: int) -> Slot:
        """Published frame `seq`, read in place; this reader must not have released it."""
        if seq >= self._ctrl[W_WRITE_SEQ]:
            raise RuntimeError(f"ring {self.name}: frame {seq} is not published yet")
        index = seq % self.capacity
        base = index * _SLOT_WORDS
        if self._words[base + _H_SEQ] != seq:
            raise RuntimeError(
                f"ring {self.name}: slot {index} holds frame {self._words[base + _H_SEQ]}, "
                f"expected {seq}; the ring was written out of protocol"
            )
        return Slot(
            seq,
            self._words[base + _H_TAKE],
            self._words[base + _H_FRAME_INDEX],
            self._frames[index],
        )

    def set_progress(self, frames_read: int) -> None:
        self._ctrl[self._w_progress] = frames_read

    def release_through(self, seq_end: int) -> None:
        """This reader is done with every frame < seq_end."""
        if seq_end > self._ctrl[W_WRITE_SEQ]:
            raise RuntimeError(f"ring {self.name}: cannot release past the published frames")
        if seq_end > self._ctrl[self._w_released]:
            self._ctrl[self._w_released] = seq_end

    def beat(self, flushing: bool = False) -> None:
        """Say this reader is alive; `flushing` marks a long codec call the owner should wait
        for (it is not a stall)."""
        self._ctrl[self._w_flushing] = int(flushing)
        self._ctrl[self._w_heartbeat] += 1

    def set_asleep(self, asleep: bool) -> None:
        self._ctrl[self._w_asleep] = int(asleep)


class RingPeeker(_RingMemory):
    """A looker, not a reader: copies out the newest published frame and holds no slot, so the
    writer never waits for it. The writer refills frame `seq`'s slot only once write_seq has
    reached seq + capacity (claim, or a loan, comes after that publish; x86-64 keeps stores in
    order), so a copy after which write_seq is still below that is whole; else it is dropped."""

    @classmethod
    def attach(cls, name: str) -> RingPeeker:
        return cls(Segment.attach(name))

    def copy_newest(self, after: int, copy: Callable[[np.ndarray], np.ndarray]) -> Slot | None:
        """`copy(frame in place)` of the newest frame if its seq is >= `after`, as a Slot
        holding the copy; None if there is none, or the writer may have refilled it meanwhile."""
        seq = self._ctrl[W_WRITE_SEQ] - 1
        base = (seq % self.capacity) * _SLOT_WORDS
        if seq < max(after, 0) or self._words[base + _H_SEQ] != seq:
            return None
        take, frame_index = self._words[base + _H_TAKE], self._words[base + _H_FRAME_INDEX]
        out = copy(self._frames[seq % self.capacity])
        if self._ctrl[W_WRITE_SEQ] - seq >= self.capacity or self._words[base + _H_SEQ] != seq:
            return None  # torn: the slot may have been claimed and written during the copy
        return Slot(seq, take, frame_index, out)
