"""Reading a LeRobot v3.0 dataset's metadata: where each episode's rows and frames are.

meta/episodes may list one episode per file (shmpipe) or many (LeRobot, or after pack); these
functions read either. The column names of an episode's file locations are built here only.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa

from shmpipe.dataset import layout
from shmpipe.dataset.untrusted import DamagedDatasetError, read_parquet
from shmpipe.errors import ConfigError

DATA_PREFIX = "data/"
EPISODES_PREFIX = "meta/episodes/"
# What every meta/episodes row must have for its rows to be found.
EPISODE_COLUMNS = (
    "episode_index",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)


T = TypeVar("T")
READ_AHEAD = 8  # files read ahead by read_ahead


def read_ahead(
    paths: Sequence[Path], read: Callable[[Path], T], ahead: int = READ_AHEAD
) -> Iterator[tuple[Path, Future[T]]]:
    """(path, future of read(path)) in order, reading up to `ahead` files ahead on every core:
    files are read while the caller works on earlier ones, and only `ahead` are held at once.
    A failed read raises from its future's result()."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        pending = deque((path, pool.submit(read, path)) for path in paths[:ahead])
        for following in paths[ahead:]:
            pending.append((following, pool.submit(read, following)))
            yield pending.popleft()
        while pending:
            yield pending.popleft()


def video_prefix(camera: str) -> str:
    """The prefix of a camera's columns in meta/episodes (chunk/file index, from/to time)."""
    return f"videos/{camera}/"


INTEGER_SUFFIXES = ("chunk_index", "file_index", "from_index", "to_index", "length")


def _name(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def episodes_files(root: Path) -> list[Path]:
    return sorted(root.glob(layout.EPISODES_GLOB))


def read_episodes(root: Path, committed: int, columns: Sequence[str] | None = None) -> pa.Table:
    """Rows of meta/episodes for episodes 0..committed-1 (any layout), by episode_index; a
    ConfigError if one is missing or listed twice."""
    files = episodes_files(root)
    names = None if columns is None else list(dict.fromkeys(["episode_index", *columns]))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # footers: parsing-bound
        tables = list(pool.map(lambda path: read_parquet(path, _name(root, path), names), files))
    table = (
        pa.concat_tables(tables) if tables else pa.table({"episode_index": pa.array([], "int64")})
    )
    indices = table.column("episode_index").to_numpy()
    if not all(pa.types.is_integer(t.schema.field(c).type) for t in tables for c in t.column_names
               if c == "episode_index" or c.endswith(INTEGER_SUFFIXES)):  # fmt: skip
        raise DamagedDatasetError(f"{root}: meta/episodes holds indices that are not integers")
    table = table.filter(pa.array(indices < committed)).sort_by("episode_index")
    if table.column("episode_index").to_pylist() != list(range(committed)):
        raise ConfigError(
            f"{root}: meta/episodes does not list each of episodes 0..{committed - 1} once"
        )
    return table


def data_rows(root: Path, committed: int) -> dict[Path, np.ndarray]:
    """Each data file holding rows of episodes 0..committed-1 and those rows' [from, to)
    dataset index ranges ((n, 2) int64), as meta/episodes says: one file per episode or many."""
    keys = ("data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index")
    table = read_episodes(root, committed, keys)
    chunk, file, start, end = (table.column(k).to_numpy() for k in keys)
    out: dict[Path, list[tuple[int, int]]] = {}
    for c, f, a, b in zip(chunk, file, start, end, strict=True):
        path = root / layout.DATA_PATH.format(chunk_index=int(c), file_index=int(f))
        out.setdefault(path, []).append((int(a), int(b)))
    return {path: np.array(ranges, np.int64).reshape(-1, 2) for path, ranges in out.items()}
