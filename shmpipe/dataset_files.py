"""How dataset files reach the disk, and how unfinished ones leave it.

Every file is written under a temporary name and renamed, so it is complete or absent; a failed
write raises DatasetError naming the file. Temporaries (`*.partial`, a video's
`*.partial.<frame>` segments, `*.joining`) and files of episodes the dataset does not count are
removed by one function, called by the writer that holds the dataset's lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from shmpipe import layout
from shmpipe.errors import ConfigError, DatasetError, UsageError

# Folders of numbered episode files (chunk-XXX/file-YYY.*), besides one per camera in videos/.
EPISODE_FOLDERS = ("data", "meta/episodes", layout.HISTOGRAMS_DIR)


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
    return ".partial" in name or name.endswith(".joining")


def remove_unfinished(root: Path, committed_episodes: int, opening: bool = False) -> None:
    """Delete temporaries and every numbered file of episode >= `committed_episodes`; when
    `opening`, also backlog spill files a killed recorder left.

    The one cleanup path: on opening a dataset (under its lock) and when an episode is
    discarded. Only chunk folders that can hold such files are listed, so it costs at most one
    chunk, not the whole dataset.
    """
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
