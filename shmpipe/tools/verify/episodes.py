"""meta/episodes as verify reads it, in memory that stays a few numbers per episode.

One meta/episodes file is read at a time: its rows are checked (reading.episode_row_problems),
the columns that locate each episode's rows and frames are kept as numpy arrays (about 100
bytes per episode with two cameras), and its per-episode stats are merged (stats.EpisodeStatsMerge)
and dropped, whatever the dataset's size.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from shmpipe.dataset.reader import EPISODE_COLUMNS, episodes_files, read_ahead, video_prefix
from shmpipe.dataset.untrusted import DamagedDatasetError, read_parquet
from shmpipe.tools.verify import reading
from shmpipe.tools.verify.stats import EpisodeStatsMerge

VIDEO_KEYS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
ABSENT = -1  # a video column a meta/episodes file lacks (times: NaN)


class EpisodeIndex:
    """Where each episode's rows and frames are: meta/episodes' location columns, numpy arrays
    in episode order (`columns[name][i]` is episode i's, when the indices are 0..n-1)."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns.get("episode_index", ()))

    def row(self, i: int) -> dict:
        """Episode i's location columns as Python numbers (a video column absent: -1 / NaN)."""
        return {name: values[i].item() for name, values in self.columns.items()}

    def frames(self) -> int:
        return int(self.columns["length"].sum()) if len(self) else 0

    def video_files(self, cameras: list[str], video_path: str,
                    problem: Callable[..., None]) -> dict[str, list[tuple[int, str]]]:  # fmt: skip
        """Each video file (info.json's `video_path` filled in) -> the (episode i, camera) it
        holds, in episode order; a camera whose file columns a row lacks is reported through
        `problem(message, episode, camera)` and left out."""
        wanted: dict[str, list[tuple[int, str]]] = {}
        for i in range(len(self)):
            e = self.row(i)
            for camera in cameras:
                key = video_prefix(camera)
                absent = [k for k in ("chunk_index", "file_index") if e[key + k] == ABSENT]
                if absent:
                    episode = e["episode_index"]
                    problem(f"meta/episodes has no '{key}{absent[0]}'", episode, camera)
                    continue
                file = video_path.format(
                    video_key=camera,
                    chunk_index=e[key + "chunk_index"],
                    file_index=e[key + "file_index"],
                )
                wanted.setdefault(file, []).append((i, camera))
        return wanted


def read_index(
    root: Path,
    cameras: list[str],
    merge: EpisodeStatsMerge,
    problem: Callable[..., None],
) -> EpisodeIndex:
    """meta/episodes' location columns of every episode (an empty index if a row cannot be
    used: nothing it names can be found); per-episode stats go to `merge`. Problems are
    reported through `problem(message, episode, file=...)`."""
    names = [*EPISODE_COLUMNS]
    for camera in cameras:
        names += [video_prefix(camera) + key for key in VIDEO_KEYS]
    parts: list[dict[str, np.ndarray]] = []
    for _, future in read_ahead(episodes_files(root), partial(_read, root)):
        try:
            table = future.result()
        except DamagedDatasetError as error:
            problem(str(error))
            continue
        merge.add(table)
        located = table.select([n for n in names if n in table.column_names])
        for batch in located.to_batches(max_chunksize=4096):
            for row in batch.to_pylist():
                found = reading.episode_row_problems(row, cameras)
                if found:
                    episode = row.get("episode_index")
                    episode = episode if isinstance(episode, int) else None
                    problem("; ".join(found), episode, file="meta/episodes")
                    return EpisodeIndex({})
        parts.append({name: _column(located, name) for name in names})
    if not parts:
        return EpisodeIndex({})
    columns = {name: np.concatenate([p[name] for p in parts]) for name in names}
    order = np.argsort(columns["episode_index"], kind="stable")
    return EpisodeIndex({name: values[order] for name, values in columns.items()})


def _read(root: Path, path: Path) -> pa.Table:
    return read_parquet(path, path.relative_to(root).as_posix())


def _column(table: pa.Table, name: str) -> np.ndarray:
    """A location column as int64 (float64 for times); absent: ABSENT (NaN) in every row."""
    floats = name.endswith("_timestamp")
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan if floats else ABSENT)
    values = table.column(name).to_numpy(zero_copy_only=False)
    return values.astype(np.float64 if floats else np.int64)
