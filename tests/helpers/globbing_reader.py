"""A reader that sees a dataset as LeRobot's loader does: meta/info.json first, then the globs
of data/, meta/episodes/ and videos/ (LeRobot's own patterns, deliberately not shmpipe's layout).

`snapshot` takes one look and says what is inconsistent in it; it reads info.json again at the
end and calls the look stable if info.json did not change meanwhile (a look that spans a commit
cannot be judged: any multi-file format shows such a reader a mixture).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

DATA_GLOB = "data/*/*.parquet"
EPISODES_GLOB = "meta/episodes/*/*.parquet"
VIDEOS_GLOB = "videos/*/*/*.mp4"


@dataclass
class Look:
    stable: bool
    episodes: int = 0  # info.json's total_episodes
    problems: list[str] = field(default_factory=list)


_ROWS: dict[tuple[Path, int, int], int] = {}  # (path, inode, mtime) -> rows, as a cache would


def _rows(paths: list[Path]) -> int:
    """Rows of parquet files, each footer read once per version of the file (a reader that
    re-reads a growing dataset keeps what it knows of files that did not change)."""
    total = 0
    for path in paths:
        found = path.stat()
        key = (path, found.st_ino, found.st_mtime_ns)
        if key not in _ROWS:
            _ROWS[key] = pq.read_metadata(path).num_rows
        total += _ROWS[key]
    return total


def snapshot(root: Path, cameras: int) -> Look:
    """One look at `root` (one file per episode of each kind, as recorded: not packed)."""
    info_path = root / "meta" / "info.json"
    try:
        before = info_path.read_bytes()
        info = json.loads(before)
        data = sorted(root.glob(DATA_GLOB))
        episodes = sorted(root.glob(EPISODES_GLOB))
        videos = sorted(root.glob(VIDEOS_GLOB))
        rows, entries = _rows(data), _rows(episodes)
        stable = info_path.read_bytes() == before
    except (OSError, ValueError) as error:  # a file gone between the glob and the read
        return Look(True, [f"read failed: {error!r}"])
    look = Look(stable, info["total_episodes"])
    total, frames = info["total_episodes"], info["total_frames"]
    if len(data) != total:
        look.problems.append(f"{len(data)} data files, total_episodes {total}")
    if entries != total:
        look.problems.append(f"{entries} meta/episodes entries, total_episodes {total}")
    if len(videos) != entries * cameras:
        look.problems.append(f"{len(videos)} videos for {entries} meta/episodes entries")
    if rows != frames:
        look.problems.append(f"{rows} data rows, total_frames {frames}")
    return look
