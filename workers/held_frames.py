"""The ring slots an encoder has read and not yet released, oldest first.

A slot is released only once its frame is on disk (in a flushed fragment of its take's video) or
void, and then at once: a writer ahead of us needs every free slot, and should the encoder be
killed, its successor finds every frame it needs either in the file or still in the ring. The
frames still held are also what a take is encoded again from after a failed encode.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from shmpipe.ipc.ring import ENCODER_READER, RingReader
from shmpipe.video.episode_writer import EpisodeVideoWriter

VOID = -1  # the frame index held for a slot whose frame is skipped


class HeldFrames:
    """(seq, take, frame index) of each slot read from `ring` and not released; `next_seq` is
    the next slot to read."""

    def __init__(self, ring: RingReader) -> None:
        self.ring = ring
        self.next_seq = ring.released(ENCODER_READER)
        self._held: deque[tuple[int, int, int]] = deque()

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return iter(self._held)

    def __len__(self) -> int:
        return len(self._held)

    def unread(self) -> bool:
        return self.ring.unread(self.next_seq)

    def hold(self, seq: int, take: int, index: int) -> None:
        """Slot `seq` was read: frame `index` of `take` (VOID: skipped); the next is read next."""
        self._held.append((seq, take, index))
        self.next_seq = seq + 1
        self.ring.set_progress(self.next_seq)

    def release_on_disk(self, take: int, writer: EpisodeVideoWriter | None) -> None:
        """Release held frames, oldest first, that are on disk: void, of another take than
        `take`, or before the durable frames of its video `writer` (None: no video is open,
        so every held frame is released)."""
        held, released = self._held, None
        durable = writer.durable_frames if writer is not None else None
        while held:
            seq, held_take, index = held[0]
            if durable is not None and index != VOID and held_take == take and index >= durable:
                break
            held.popleft()
            released = seq + 1
        if released is not None:
            self.ring.release_through(released)

    def full(self) -> bool:
        """We hold every slot but one and nothing new can be read: only a flush frees one."""
        return len(self._held) >= self.ring.capacity - 1 and not self.unread()

    def encode_again(self, writer: EpisodeVideoWriter, take: int, first: int) -> None:
        """Encode the held frames of `take` from frame `first` on into `writer` (a new segment
        after a failed encode), in order."""
        for seq, held_take, index in list(self._held):
            if held_take == take and index >= first:
                slot = self.ring.read(seq)
                writer.encode(slot.frame, index)
                del slot  # no view of the slot may outlive its release
                self.ring.beat()

    def clear(self) -> None:
        self._held.clear()
