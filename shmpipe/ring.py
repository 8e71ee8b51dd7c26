"""Shared-memory frame ring: one per camera, one producer (the control process), fixed readers.

A slot holds one raw HxWxC uint8 frame and a header: its sequence number, take, episode index,
frame index and capture time. A take numbers every episode ever opened; a cancelled episode's
index is reused by the next episode, its take never is, so workers key their work on the take.
Sequence numbers count the frames published since the ring was made; frame `seq` lives in slot
`seq % capacity`. Ownership is carried by counters, each with one writer:
- `write_seq` (producer): frames < write_seq are published; readers may read them in place.
- `released[r]` (reader r): reader r is done with every frame < released[r].
The producer writes slot `seq % capacity` only when every reader has released `seq - capacity`,
so a slot is never overwritten while any reader may hold it and a read can be neither torn nor
stale. A reader also checks the slot's own sequence number as a guard against misuse.
Counters are aligned 8-byte words on separate cache lines; stores are ordered on x86-64 (TSO).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shmpipe.segment import Segment

ENCODER_READER = 0
STATS_READER = 1
NUM_READERS = 2

_MAGIC = 0x73686D7069706531  # "shmpipe1"
_HEADER_BYTES = 4096
_WORDS_PER_LINE = 8  # 64-byte cache line in int64 words
# control words (index into the int64 header)
_W_MAGIC, _W_CAPACITY, _W_HEIGHT, _W_WIDTH, _W_CHANNELS, _W_SLOT_BYTES = range(6)
_W_WRITE_SEQ = 1 * _WORDS_PER_LINE
_W_HIGH_WATER = _W_WRITE_SEQ + 1


def _w_released(reader: int) -> int:
    return (2 + reader) * _WORDS_PER_LINE


def _w_progress(reader: int) -> int:
    """Frames reader `reader` has read (it may hold some of them unreleased)."""
    return _w_released(reader) + 1


def _w_asleep(reader: int) -> int:
    """1 while reader `reader` sleeps on its doorbell: only then is ringing it worth a syscall."""
    return _w_released(reader) + 2


_H_SEQ, _H_TAKE, _H_EPISODE, _H_FRAME_INDEX, _H_CAPTURE_TIME = range(5)  # words of a header
_SLOT_HEADER = np.dtype(
    [
        ("seq", "<i8"),
        ("take", "<i8"),
        ("episode", "<i8"),
        ("frame_index", "<i8"),
        ("capture_time", "<f8"),
    ]
)


_SLOT_WORDS = _SLOT_HEADER.itemsize // 8


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


@dataclass(frozen=True)
class Slot:
    """A published frame as a reader sees it: `frame` is a view into shared memory."""

    seq: int
    take: int
    episode: int
    frame_index: int
    capture_time: float
    frame: np.ndarray


class FrameRing:
    """The ring seen from one process: `create` (producer side, owner) or `attach` (readers)."""

    def __init__(self, segment: Segment) -> None:
        self._segment = segment
        buf = segment.buffer
        # Counters and slot headers are read and written through memoryviews: one aligned 8-byte
        # access each, without the numpy scalar round trip (several us each on a cold cache).
        self._views = [memoryview(buf)]
        self._ctrl = self._view(0, _HEADER_BYTES, "q")
        if self._ctrl[_W_MAGIC] != _MAGIC:
            raise RuntimeError(f"shared memory {segment.name} is not a shmpipe frame ring")
        self.capacity = int(self._ctrl[_W_CAPACITY])
        self.shape = (self._ctrl[_W_HEIGHT], self._ctrl[_W_WIDTH], self._ctrl[_W_CHANNELS])
        slot_bytes = int(self._ctrl[_W_SLOT_BYTES])
        header_bytes = self.capacity * _SLOT_HEADER.itemsize
        self._slot_words = self._view(_HEADER_BYTES, header_bytes, "q")
        self._slot_times = self._view(_HEADER_BYTES, header_bytes, "d")
        data_offset = _align(_HEADER_BYTES + self.capacity * _SLOT_HEADER.itemsize, 4096)
        frame_bytes = int(np.prod(self.shape))
        self._frames = np.ndarray(
            (self.capacity, *self.shape),
            np.uint8,
            buf,
            data_offset,
            strides=(slot_bytes, self.shape[1] * self.shape[2], self.shape[2], 1),
        )
        self.frame_bytes = frame_bytes
        self.name = segment.name

    def _view(self, offset: int, size: int, fmt: str) -> memoryview:
        view = self._views[0][offset : offset + size]
        cast = view.cast(fmt)
        self._views += [view, cast]
        return cast

    @staticmethod
    def size_for(capacity: int, shape: tuple[int, int, int]) -> tuple[int, int]:
        """(segment bytes, slot bytes) for a ring of `capacity` frames of `shape`."""
        slot_bytes = _align(int(np.prod(shape)), 64)
        data_offset = _align(_HEADER_BYTES + capacity * _SLOT_HEADER.itemsize, 4096)
        return data_offset + capacity * slot_bytes, slot_bytes

    @classmethod
    def create(cls, name: str, capacity: int, shape: tuple[int, int, int]) -> FrameRing:
        if capacity < 2:
            raise ValueError(f"a ring needs at least 2 slots, got {capacity}")
        size, slot_bytes = cls.size_for(capacity, shape)
        segment = Segment.create(name, size)
        ctrl = np.ndarray((_HEADER_BYTES // 8,), np.int64, segment.buffer, 0)
        ctrl[:] = 0
        ctrl[[_W_CAPACITY, _W_HEIGHT, _W_WIDTH, _W_CHANNELS, _W_SLOT_BYTES]] = (
            capacity,
            *shape,
            slot_bytes,
        )
        headers = np.ndarray((capacity,), _SLOT_HEADER, segment.buffer, _HEADER_BYTES)
        headers["seq"] = -1
        del ctrl, headers
        np.ndarray((1,), np.int64, segment.buffer, 0)[0] = _MAGIC
        ring = cls(segment)
        # Touch every page now: a first write to a tmpfs page costs ~0.8 ms per 480x640 frame,
        # which would otherwise land in add_frame during the first pass over the ring.
        ring._frames[...] = 0
        return ring

    @classmethod
    def attach(cls, name: str) -> FrameRing:
        return cls(Segment.attach(name))

    # -- counters ---------------------------------------------------------------------------
    @property
    def write_seq(self) -> int:
        return int(self._ctrl[_W_WRITE_SEQ])

    def released(self, reader: int) -> int:
        return int(self._ctrl[_w_released(reader)])

    def progress(self, reader: int) -> int:
        return max(int(self._ctrl[_w_progress(reader)]), self.released(reader))

    def set_progress(self, reader: int, frames_read: int) -> None:
        self._ctrl[_w_progress(reader)] = frames_read

    def set_asleep(self, reader: int, asleep: bool) -> None:
        self._ctrl[_w_asleep(reader)] = int(asleep)

    def wake_needed(self, reader: int) -> bool:
        """True (once) if `reader` went to sleep: the caller must then ring its doorbell.

        A reader that is busy needs no ring: it looks at `write_seq` before it sleeps again. If
        the two sides race, the reader's sleep still ends at its timeout."""
        if not self._ctrl[_w_asleep(reader)]:
            return False
        self._ctrl[_w_asleep(reader)] = 0
        return True

    def slots_used(self) -> int:
        """Frames published that some reader has not released yet."""
        ctrl = self._ctrl
        oldest = min(ctrl[_w_released(ENCODER_READER)], ctrl[_w_released(STATS_READER)])
        return ctrl[_W_WRITE_SEQ] - oldest

    @property
    def high_water(self) -> int:
        """Most slots ever in use at once (reset with `reset_high_water`)."""
        return int(self._ctrl[_W_HIGH_WATER])

    def reset_high_water(self) -> None:
        self._ctrl[_W_HIGH_WATER] = self.slots_used()

    # -- producer ---------------------------------------------------------------------------
    def claim_slot(self) -> np.ndarray | None:
        """The next free slot's frame memory to write into, or None if every slot is held."""
        if self.slots_used() >= self.capacity:
            return None
        return self._frames[self.write_seq % self.capacity]

    def publish(self, take: int, episode: int, frame_index: int, capture_time: float) -> int:
        """Hand the claimed slot, now filled, to every reader; returns its sequence number."""
        seq = self._ctrl[_W_WRITE_SEQ]
        base = (seq % self.capacity) * _SLOT_WORDS
        words = self._slot_words
        words[base + _H_TAKE] = take
        words[base + _H_EPISODE] = episode
        words[base + _H_FRAME_INDEX] = frame_index
        self._slot_times[base + _H_CAPTURE_TIME] = capture_time
        words[base + _H_SEQ] = seq  # the slot's own seq last: it vouches for the rest
        self._ctrl[_W_WRITE_SEQ] = seq + 1
        used = self.slots_used()
        if used > self._ctrl[_W_HIGH_WATER]:
            self._ctrl[_W_HIGH_WATER] = used
        return seq

    # -- readers ----------------------------------------------------------------------------
    def peek(self, reader: int) -> Slot | None:
        """The oldest frame reader `reader` has not released, read in place; None if none."""
        seq = self.released(reader)
        if seq >= self.write_seq:
            return None
        return self._slot(seq)

    def _slot(self, seq: int) -> Slot:
        index = seq % self.capacity
        base = index * _SLOT_WORDS
        words = self._slot_words
        if words[base + _H_SEQ] != seq:
            raise RuntimeError(
                f"ring {self.name}: slot {index} holds frame {words[base + _H_SEQ]}, "
                f"expected {seq}; the ring was written out of protocol"
            )
        return Slot(
            seq=seq,
            take=words[base + _H_TAKE],
            episode=words[base + _H_EPISODE],
            frame_index=words[base + _H_FRAME_INDEX],
            capture_time=self._slot_times[base + _H_CAPTURE_TIME],
            frame=self._frames[index],
        )

    def read(self, seq: int) -> Slot:
        """Published frame `seq` read in place; the caller must hold it (not yet released by
        the caller's reader)."""
        if not seq < self.write_seq:
            raise RuntimeError(f"ring {self.name}: frame {seq} is not published yet")
        return self._slot(seq)

    def release(self, reader: int, seq: int) -> None:
        """Reader `reader` is done with frame `seq` (always its oldest unreleased frame)."""
        expected = self.released(reader)
        if seq != expected:
            raise RuntimeError(f"ring {self.name}: release of frame {seq}, expected {expected}")
        self._ctrl[_w_released(reader)] = seq + 1

    def release_through(self, reader: int, seq_end: int) -> None:
        """Mark every frame < seq_end released by `reader` (a restarted reader resuming)."""
        if seq_end > self.write_seq:
            raise RuntimeError(f"ring {self.name}: cannot release past the published frames")
        if seq_end > self.released(reader):
            self._ctrl[_w_released(reader)] = seq_end

    def close(self) -> None:
        self._ctrl = self._slot_words = self._slot_times = self._frames = None
        for view in reversed(self._views):
            view.release()
        self._views = []
        self._segment.close()
