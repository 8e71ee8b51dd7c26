"""How dataset files reach the disk, and who may write them.

Every file is written under a temporary name, synced (fsync) and renamed, so it is complete or
absent; a failed write raises DatasetError naming the file. A rename is durable only once its
folder is synced too: `sync_folders` does that for a set of files, up to the dataset's root, so
a caller can make an episode's files durable before the file that counts them. One writer at a
time holds the dataset's lock.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from shmpipe.dataset import layout
from shmpipe.errors import ConfigError, DatasetError, UsageError
from shmpipe.system import priority

_LIBC = ctypes.PyDLL(None, use_errno=True)  # PyDLL: its calls keep the GIL
_LIBC.rename.argtypes = (ctypes.c_char_p, ctypes.c_char_p)


def write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write `path` through its staged name (layout.staged) and a rename. An OSError (disk
    full, permissions) becomes a DatasetError naming the file; the temporary is removed and
    `path` is untouched."""
    publish(write_unpublished(path, write), path)


def write_unpublished(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    """`path`'s content written and synced under its staged name (returned), for publish() to
    rename into place later; errors as write_atomically."""
    partial = layout.staged(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise DatasetError(f"{path}: {error}") from error
        raise
    return partial


def publish(partial: Path, path: Path) -> None:
    """Rename a write_unpublished file into place (durable once its folder is synced)."""
    try:
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DatasetError(f"{path}: {error}") from error


def rename_together(renames: Sequence[tuple[Path, Path]]) -> None:
    """Rename each (source, final) in order, with no other thread of this process running in
    between: libc's rename() called with the GIL held (os.replace releases it at every call,
    and an encoder or stats thread can then hold it for a switch interval, 5 ms, between two
    renames). A reader thus sees the renames at nearly one instant. An error raises
    DatasetError naming the file; the renames before it stay done. Nor does another process
    take this CPU in between, where the thread may be real-time for the burst (a reader that
    globs during a burst cut in two by the scheduler saw an episode before info.json counted
    it, 1 look in 10,000 on a loaded machine)."""
    paths = [(os.fsencode(source), os.fsencode(final)) for source, final in renames]
    with priority.held_on_cpu():
        for i, (source, final) in enumerate(paths):
            if _LIBC.rename(source, final) != 0:
                error = ctypes.get_errno()
                source_path, final_path = renames[i]
                raise DatasetError(f"{final_path}: "
                                   f"{OSError(error, os.strerror(error), str(source_path))}")


def sync_files(paths: Iterable[Path]) -> None:
    """fsync files written by someone else (an encoder's video)."""
    sync_durably(paths, [], Path("/"))


def sync_folders(paths: Iterable[Path], root: Path, linked: set[Path] | None = None) -> None:
    """fsync the folder of every path and each folder above it up to root's parent, once, so
    renames and newly made folders survive a power cut (`linked`: see sync_durably)."""
    sync_durably([], paths, root, linked)


def sync_durably(files: Iterable[Path], renamed: Iterable[Path], root: Path,
                 linked: set[Path] | None = None) -> None:  # fmt: skip
    """fsync `files`, and the folders that make `renamed` (files renamed into place) reach
    the disk, all at once on a thread each: fsync waits for the disk, and the file system joins
    concurrent fsyncs into one journal commit. `linked` holds folders whose own entry is known
    durable (their parent was synced since they were made): the folders above one are not
    synced again, and this call adds the folders it made durable."""
    linked = set() if linked is None else linked
    folders: dict[Path, None] = {}
    top = root.parent
    for path in renamed:
        folder = path.parent
        while folder not in folders:
            folders[folder] = None
            if folder in linked or folder == top or folder == folder.parent:
                break
            folder = folder.parent
    jobs = [(path, 0) for path in files] + [(folder, os.O_DIRECTORY) for folder in folders]
    if len(jobs) == 1:
        _fsync(*jobs[0])
    elif jobs:
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            list(pool.map(lambda job: _fsync(*job), jobs))
    linked.update(folder for folder in folders if folder.parent in folders)


def _fsync(path: Path, flags: int = 0) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        raise DatasetError(f"{path}: {error}") from error


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


def is_locked(root: Path) -> bool:
    """Whether a writer holds the dataset's lock now. Read from /proc/locks, so that asking
    never takes the lock (a recorder starting at that moment would be refused); False where
    there is no /proc/locks or no lock file."""
    try:
        found = os.stat(root / layout.LOCK_PATH)
        if not stat.S_ISREG(found.st_mode):
            return False
        with open("/proc/locks") as f:
            locks = f.read(1 << 24)
    except OSError:
        return False
    key = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    return any("FLOCK" in line and key in line.split() for line in locks.splitlines())
