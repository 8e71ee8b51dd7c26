"""The newest numeric row (state, action, ...) in shared memory, for the preview to plot.

The rings carry only images; the numeric row of a frame stays in the control process. With the
preview on, add_frame also writes the row here (a few float64 stores), overwriting the last one:
there is one writer and no queue, so a preview that is slow, stopped or dead costs nothing. The
words are a seqlock: the writer makes the version odd, writes, makes it even; a reader that sees
an odd version, or a different one after copying, drops its copy (x86-64 keeps stores in order).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from shmpipe.ipc.segment import Segment

_VERSION, _COUNT, _TAKE, _FRAME_INDEX = range(4)
_HEADER_WORDS = 8


class LatestRow:
    """`publish` (the control process) and `read` (the preview) of one row of `features`
    (name -> shape), flattened in their order into float64."""

    def __init__(self, segment: Segment, features: Mapping[str, tuple[int, ...]]) -> None:
        self._segment, self.name = segment, segment.name
        self.slices: dict[str, slice] = {}
        start = 0
        for name, shape in features.items():
            size = int(np.prod(shape))
            self.slices[name] = slice(start, start + size)
            start += size
        self._whole = memoryview(segment.buffer)
        self._words = self._whole[: _HEADER_WORDS * 8].cast("q")
        self._values = np.ndarray((start,), np.float64, segment.buffer, _HEADER_WORDS * 8)

    @staticmethod
    def _bytes(features: Mapping[str, tuple[int, ...]]) -> int:
        return (_HEADER_WORDS + sum(int(np.prod(s)) for s in features.values())) * 8

    @classmethod
    def create(cls, name: str, features: Mapping[str, tuple[int, ...]]) -> LatestRow:
        return cls(Segment.create(name, cls._bytes(features)), features)

    @classmethod
    def attach(cls, name: str, features: Mapping[str, tuple[int, ...]]) -> LatestRow:
        return cls(Segment.attach(name), features)

    def publish(self, row: Mapping[str, np.ndarray], take: int, frame_index: int) -> None:
        """Overwrite the row with `row` (every feature), frame `frame_index` of take `take`."""
        words = self._words
        version = words[_VERSION]
        words[_VERSION] = version + 1  # odd: a reader copying now drops its copy
        for name, where in self.slices.items():
            self._values[where] = np.ravel(row[name])
        words[_COUNT] += 1
        words[_TAKE], words[_FRAME_INDEX] = take, frame_index
        words[_VERSION] = version + 2

    def read(self, after: int = 0) -> tuple[int, int, int, np.ndarray] | None:
        """(rows published so far, take, frame index, a copy of the values) if a row newer
        than `after` rows is there and was not being written meanwhile; else None."""
        words = self._words
        version = words[_VERSION]
        if version & 1 or words[_COUNT] <= after:
            return None
        count, take, frame_index = words[_COUNT], words[_TAKE], words[_FRAME_INDEX]
        values = self._values.copy()
        if words[_VERSION] != version:
            return None
        return count, take, frame_index, values

    def close(self) -> None:
        self._values = None
        self._words.release()
        self._whole.release()
        self._segment.close()

    def unlink(self) -> None:
        """Remove the block's name (the creator's call, beside close): see ipc.segment."""
        self._segment.unlink()
