"""The names of an encoder's temporary files beside the video it writes, built and recognised
here only (the dataset's commit and cleanup import them).

A segment `<video>.partial.NNNNNN` holds the episode's frames from NNNNNN on: a restarted encoder
continues in a new one. `<video>.joining` is the remux of several segments, renamed to `<video>`
once whole. Neither name ends in `.mp4`, so no reader's glob of `videos/` sees them.
"""

from __future__ import annotations

from pathlib import Path

SEGMENT = ".partial."  # then the first frame, 6 digits
JOINING = ".joining"


def segment_path(video: Path, first_frame: int) -> Path:
    """The segment of `video` whose first frame is `first_frame`."""
    return video.with_name(f"{video.name}{SEGMENT}{first_frame:06d}")


def segment_paths(video: Path) -> list[tuple[int, Path]]:
    """The (first frame, path) of every segment of `video` on disk, in frame order."""
    found = []
    for p in video.parent.glob(video.name + SEGMENT + "*"):
        try:
            found.append((int(p.name.rsplit(".", 1)[1]), p))
        except ValueError:
            continue
    return sorted(found)


def remove_segments(video: Path) -> None:
    for _, p in segment_paths(video):
        p.unlink(missing_ok=True)


def trim_segments(video: Path, before: int) -> None:
    """Delete the segments of `video` all of whose frames come before frame `before` (those that
    the next segment starts at or before it); the newest segment always stays."""
    found = segment_paths(video)
    for (_, p), (next_first, _) in zip(found, found[1:], strict=False):
        if next_first <= before:
            p.unlink(missing_ok=True)


def joining_path(video: Path) -> Path:
    return video.with_name(video.name + JOINING)


def is_encoder_temporary(name: str) -> bool:
    """A file name an encoder writes and later renames or deletes."""
    return SEGMENT in name or name.endswith(JOINING)
