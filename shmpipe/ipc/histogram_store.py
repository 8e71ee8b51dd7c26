"""Per-camera image histograms of the open episode, kept in shared memory by the control process.

The stats worker commits every frame here, so a killed stats worker loses nothing: each camera
has two copies of (take, frames counted, next sequence number, histogram: 3x256 RGB, 1x4096
depth) and a commit counter whose parity says which copy is current. A commit writes the other
copy in full, then bumps the counter with one aligned store, so a restarted worker sees a frame
either fully counted or not; a reader that runs during commits retries until the counter stood
still around its copy (a seqlock), so it never mixes two commits.

For rolling capture (Pipeline(preroll_s=...)) the block also holds, per camera, a ring of
`snapshots` cumulative histograms of a take, one every `segment_frames` frames: the pre-roll that
a keep() drops is then subtracted exactly (the kept frames' histogram is the final tally minus
the snapshot at the first kept frame). The worker writes a snapshot before the commit of the frame
that ends it, so a restarted worker writes it again, identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shmpipe.ipc.segment import Segment

RGB_HISTOGRAM = (3, 256)


def _layout(num_cameras: int, shapes: list[tuple[int, int]] | None) -> tuple[list, int, int]:
    """(histogram shape per camera, words per copy, words per camera): a copy is take, frames,
    next_seq and the histogram; word 0 selects the current copy, padded to a cache line."""
    shapes = [tuple(s) for s in shapes] if shapes else [RGB_HISTOGRAM] * num_cameras
    copy_words = 3 + max(c * b for c, b in shapes)
    return shapes, copy_words, 8 + 2 * copy_words


@dataclass(frozen=True)
class CameraTally:
    """A committed state: `histogram` counts the downsampled pixels of `frames` frames of `take`."""

    take: int
    frames: int
    next_seq: int
    histogram: np.ndarray  # (3, 256) or (1, 4096) int64, a copy


class StatsStore:
    """`shapes`: each camera's histogram shape (default: all RGB, (3, 256))."""

    def __init__(self, segment: Segment, num_cameras: int, shapes=None,
                 snapshots: int = 0) -> None:  # fmt: skip
        self._segment = segment
        self.name = segment.name
        self.num_cameras = num_cameras
        self.shapes, self._copy_words, words = _layout(num_cameras, shapes)
        self._words = np.ndarray((num_cameras, words), np.int64, segment.buffer, 0)
        self.snapshots = snapshots  # slots: (take, frames, histogram), like a copy
        self._snaps = np.ndarray((num_cameras, snapshots, self._copy_words), np.int64,
                                 segment.buffer, self._words.nbytes)  # fmt: skip

    @staticmethod
    def size_for(num_cameras: int, shapes: list[tuple[int, int]] | None = None,
                 snapshots: int = 0) -> int:  # fmt: skip
        _, copy_words, words = _layout(num_cameras, shapes)
        return num_cameras * (words + snapshots * copy_words) * 8

    @classmethod
    def create(cls, name: str, num_cameras: int, shapes=None, snapshots: int = 0) -> StatsStore:
        size = cls.size_for(num_cameras, shapes, snapshots)
        store = cls(Segment.create(name, size), num_cameras, shapes, snapshots)
        store._words[:] = 0
        store._words[:, 8] = -1  # copy 0: no take yet
        store._snaps[:] = -1  # no snapshot yet
        return store

    @classmethod
    def attach(cls, name: str, num_cameras: int, shapes=None, snapshots: int = 0) -> StatsStore:
        return cls(Segment.attach(name), num_cameras, shapes, snapshots)

    def write_snapshot(self, camera: int, take: int, frames: int, histogram: np.ndarray,
                       every: int) -> None:  # fmt: skip
        """Keep `histogram`, the cumulative count of `take`'s first `frames` frames (a multiple
        of `every`), in the camera's slot for it; the slot is marked invalid while written."""
        slot = self._snaps[camera, (frames // every) % self.snapshots]
        slot[1] = -1
        slot[3 : 3 + histogram.size] = histogram.reshape(-1)
        slot[0] = take
        slot[1] = frames

    def snapshot(self, camera: int, take: int, frames: int) -> np.ndarray | None:
        """The cumulative histogram of `take`'s first `frames` frames, if its slot still holds
        it (a copy), else None (not written yet, or overwritten)."""
        if frames == 0:
            return np.zeros(self.shapes[camera], np.int64)
        channels, bins = self.shapes[camera]
        for slot in self._snaps[camera]:
            if slot[0] == take and slot[1] == frames:
                copy = slot[3 : 3 + channels * bins].copy()
                if slot[0] == take and slot[1] == frames:  # not rewritten meanwhile
                    return copy.reshape(channels, bins)
        return None

    def _copy(self, camera: int, which: int) -> np.ndarray:
        start = 8 + which * self._copy_words
        channels, bins = self.shapes[camera]
        return self._words[camera, start : start + 3 + channels * bins]

    def tally(self, camera: int) -> CameraTally:
        while True:
            counter = int(self._words[camera, 0])
            current = self._copy(camera, counter & 1).copy()
            if int(self._words[camera, 0]) == counter:  # no commit began meanwhile
                break
        return CameraTally(
            take=int(current[0]),
            frames=int(current[1]),
            next_seq=int(current[2]),
            histogram=current[3:].reshape(self.shapes[camera]),
        )

    def commit(self, camera: int, take: int, seq: int, frame_histogram: np.ndarray) -> None:
        """Count one frame (ring sequence number `seq`) of `take` into the camera's tally.

        A frame of another take than the current tally's starts that take from zero."""
        counter = int(self._words[camera, 0])
        which = counter & 1
        current = self._copy(camera, which)
        other = self._copy(camera, 1 - which)
        if int(current[0]) == take:
            np.add(current[3:], frame_histogram.reshape(-1), out=other[3:])
            other[1] = current[1] + 1
        else:
            other[3:] = frame_histogram.reshape(-1)
            other[1] = 1
        other[0] = take
        other[2] = seq + 1
        self._words[camera, 0] = counter + 1

    def close(self) -> None:
        self._words = None
        self._segment.close()

    def unlink(self) -> None:
        """Remove the block's name (the creator's call, beside close): see ipc.segment."""
        self._segment.unlink()
