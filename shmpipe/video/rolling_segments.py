"""Rolling capture's segments of one take as its encoder sees them: where to cut, what to delete.

The control process (shmpipe.recorder.rolling) keeps an episode from `window_start` of its frame
count; the encoder deletes only segments that end before `window_start` of its own newest frame,
which is never ahead of the control process's count: so what a keep needs is always on disk.
"""

from __future__ import annotations

from pathlib import Path

from shmpipe.video.segments import trim_segments


def window_start(frames: int, window: int, segment: int) -> int:
    """The start of the segment holding frame `frames` - `window` (0 before a full window)."""
    return max(0, (frames - window) // segment * segment)


class RollingSegments:
    """The segments of `video` for a window of `window` frames cut every `segment` frames;
    once `kept_from` >= 0 the episode starts there and what came before is deleted."""

    def __init__(self, video: Path, window: int, segment: int, kept_from: int = -1) -> None:
        self.video, self.window, self.segment, self.kept_from = video, window, segment, kept_from
        if kept_from >= 0:
            trim_segments(video, kept_from)

    @property
    def first_kept(self) -> int:
        return max(self.kept_from, 0)

    def cut_at(self, index: int, segment_first: int) -> bool:
        """Whether frame `index` starts a new segment (the open one started at segment_first)."""
        return index % self.segment == 0 and index != segment_first

    def trim(self, newest: int) -> None:
        """Delete the segments no keep can need once frame `newest` is read."""
        before = self.kept_from
        if before < 0:
            before = window_start(newest, self.window, self.segment)
        trim_segments(self.video, before)
