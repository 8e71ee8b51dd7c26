"""How dataset files reach the disk, and how unfinished ones leave it.

Every file is written under a temporary name and renamed, so it is complete or absent; a failed
write raises DatasetError naming the file. Temporaries (`*.partial`, a video's
`*.partial.<frame>` segments, `*.joining`, pack's `*.packing`) and files of episodes the dataset
does not count are removed by one function, called by the writer that holds the dataset's lock;
it first finishes (or undoes) a pack that was interrupted, following pack's journal.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe import layout
from shmpipe.errors import ConfigError, DatasetError, UsageError

# Folders of numbered episode files (chunk-XXX/file-YYY.*), besides one per camera in videos/.
EPISODE_FOLDERS = ("data", "meta/episodes", layout.HISTOGRAMS_DIR)
# pack's journal: {"state": "writing" | "swapping", "renames": [[temporary, final], ...],
# "remove": [old file, ...]}, paths relative to the root (see shmpipe/pack.py).
PACK_JOURNAL = layout.SHMPIPE_DIR + "/pack.json"
PACKING = ".packing"  # suffix of pack's new files until they are renamed into place


def write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write `path` through `path.partial` and a rename. An OSError (disk full, permissions)
    becomes a DatasetError naming the file; the temporary is removed and `path` is untouched."""
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as f:
            write(f)
        os.replace(partial, path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise DatasetError(f"{path}: {error}") from error
        raise


def is_temporary(name: str) -> bool:
    """A file name that is never part of a finished episode."""
    return ".partial" in name or name.endswith((".joining", PACKING))


def remove_unfinished(root: Path, committed_episodes: int, opening: bool = False) -> None:
    """Delete temporaries and every numbered file of episode >= `committed_episodes`; when
    `opening`, also backlog spill files a killed recorder left.

    The one cleanup path: on opening a dataset (under its lock) and when an episode is
    discarded. Only chunk folders that can hold such files are listed, so it costs at most one
    chunk, not the whole dataset.
    """
    if opening:
        finish_pack(root)
    first_chunk, _ = layout.chunk_and_file(committed_episodes)
    videos = root / "videos"
    folders = [root / name for name in EPISODE_FOLDERS]
    folders += sorted(p for p in videos.iterdir() if p.is_dir()) if videos.is_dir() else []
    leftovers = [p for p in (root / "meta").glob("*") if is_temporary(p.name)]
    if opening:
        leftovers += list((root / layout.SPILL_DIR).glob("*.raw"))
    for folder in folders:
        for chunk in folder.glob("chunk-*"):
            number = layout.chunk_number(chunk)
            if number is None or number < first_chunk or not chunk.is_dir():
                continue
            for path in chunk.iterdir():
                episode = layout.file_number(path)
                if is_temporary(path.name) or (
                    episode is not None and episode >= committed_episodes
                ):
                    leftovers.append(path)
    for path in leftovers:
        path.unlink(missing_ok=True)


def require_empty(root: Path) -> None:
    """A new dataset goes into an absent or empty folder (our own lock file aside)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder")
    lock = root / layout.LOCK_PATH
    stray = next((p for p in root.rglob("*") if p != lock and not p.is_dir()), None)
    if stray is not None:
        raise ConfigError(
            f"{root} has no {layout.INFO_PATH} but is not empty (e.g. {stray}); "
            "record into an empty folder or an existing dataset"
        )


def take_lock(root: Path) -> IO[bytes]:
    """Hold the dataset's writer lock until the returned file is closed; refuse if taken."""
    path = root / layout.LOCK_PATH
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path, "ab")  # appends nothing: opening must not change the file
    except OSError as error:
        raise DatasetError(f"{path}: {error}") from error
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise UsageError(f"{root} is open for recording by another writer") from None
    return lock


def finish_pack(root: Path) -> None:
    """Bring an interrupted pack to one layout. Journal "writing": the old layout is whole;
    delete the new files. "swapping": the new layout was complete before its first rename;
    finish the renames and the deletions. Idempotent: a crash in here is finished next time."""
    journal = root / PACK_JOURNAL
    if not journal.exists():
        return
    plan = json.loads(journal.read_text())
    for temporary, final in plan["renames"]:
        if plan["state"] == "writing":
            (root / temporary).unlink(missing_ok=True)
        elif (root / temporary).exists():
            os.replace(root / temporary, root / final)
    if plan["state"] == "swapping":
        for old in plan["remove"]:
            (root / old).unlink(missing_ok=True)
    journal.unlink()


def read_episodes(root: Path, committed: int, columns: Sequence[str] | None = None) -> pa.Table:
    """Rows of meta/episodes for episodes 0..committed-1 (any layout), by episode_index; a
    ConfigError if one is missing or listed twice."""
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    names = None if columns is None else list(dict.fromkeys(["episode_index", *columns]))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # footers: parsing-bound
        tables = list(pool.map(lambda path: pq.read_table(path, columns=names), files))
    table = (
        pa.concat_tables(tables) if tables else pa.table({"episode_index": pa.array([], "int64")})
    )
    indices = table.column("episode_index").to_numpy()
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
