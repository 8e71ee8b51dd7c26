"""Per-camera image histograms of the open episode, kept in shared memory by the control process.

The stats worker commits every frame here, so a killed stats worker loses nothing: each camera
has two copies of (take, frames counted, next sequence number, 3x256 histogram) and a word
saying which copy is current. A commit writes the other copy in full, then flips that word with
one aligned store, so a reader (or a restarted worker) sees a frame either fully counted or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shmpipe.segment import Segment

_BINS = 256
_CHANNELS = 3
_COPY_WORDS = 3 + _CHANNELS * _BINS  # take, frames, next_seq, histogram
_CAMERA_WORDS = 8 + 2 * _COPY_WORDS  # word 0 selects the current copy; padded to a cache line


@dataclass(frozen=True)
class CameraTally:
    """A committed state: `histogram` counts the downsampled pixels of `frames` frames of `take`."""

    take: int
    frames: int
    next_seq: int
    histogram: np.ndarray  # (3, 256) int64, a copy


class StatsStore:
    def __init__(self, segment: Segment, num_cameras: int) -> None:
        self._segment = segment
        self.name = segment.name
        self.num_cameras = num_cameras
        self._words = np.ndarray((num_cameras, _CAMERA_WORDS), np.int64, segment.buffer, 0)

    @staticmethod
    def size_for(num_cameras: int) -> int:
        return num_cameras * _CAMERA_WORDS * 8

    @classmethod
    def create(cls, name: str, num_cameras: int) -> StatsStore:
        store = cls(Segment.create(name, cls.size_for(num_cameras)), num_cameras)
        store._words[:] = 0
        store._words[:, 8] = -1  # copy 0: no take yet
        return store

    @classmethod
    def attach(cls, name: str, num_cameras: int) -> StatsStore:
        return cls(Segment.attach(name), num_cameras)

    def _copy(self, camera: int, which: int) -> np.ndarray:
        start = 8 + which * _COPY_WORDS
        return self._words[camera, start : start + _COPY_WORDS]

    def tally(self, camera: int) -> CameraTally:
        current = self._copy(camera, int(self._words[camera, 0]))
        return CameraTally(
            take=int(current[0]),
            frames=int(current[1]),
            next_seq=int(current[2]),
            histogram=current[3:].reshape(_CHANNELS, _BINS).copy(),
        )

    def commit(self, camera: int, take: int, seq: int, frame_histogram: np.ndarray) -> None:
        """Count one frame (ring sequence number `seq`) of `take` into the camera's tally.

        A frame of another take than the current tally's starts that take from zero."""
        which = int(self._words[camera, 0])
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
        self._words[camera, 0] = 1 - which

    def close(self) -> None:
        self._words = None
        self._segment.close()
