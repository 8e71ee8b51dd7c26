"""Names of the POSIX shared-memory objects shmpipe creates, and who may remove them.

Every segment and semaphore is named `/shmpipe_<owner pid>_<token>_<what>`. Named objects outlive
a killed process, so something must tell a dead owner's objects from a live one's. A pid cannot:
containers share /dev/shm without sharing pids. So each owner holds an `flock` on its own lock
file `/dev/shm/shmpipe_<pid>_<token>_owner` for as long as it lives (the kernel drops it when the
process dies, however it dies); an object group whose lock can be taken has no live owner.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import stat
from collections import defaultdict
from pathlib import Path

import posix_ipc

PREFIX = "shmpipe"
SHM_DIR = Path("/dev/shm")
OWNER_LOCK = "owner"
_PATTERN = re.compile(rf"^(?P<sem>sem\.)?(?P<name>{PREFIX}_(?P<pid>\d+)_(?P<token>[0-9a-f]+)_.+)$")


def new_token() -> str:
    """A short random token so that several pipelines in one process never share a name."""
    return secrets.token_hex(4)


def object_name(owner_pid: int, token: str, what: str) -> str:
    return f"/{PREFIX}_{owner_pid}_{token}_{what}"


class OwnerLock:
    """Held by a live owner (created first, removed last, see the module docstring). Not
    inherited by worker processes (close-on-exec); a forked child shares it until it exits."""

    def __init__(self, owner_pid: int, token: str) -> None:
        self.path = SHM_DIR / object_name(owner_pid, token, OWNER_LOCK).lstrip("/")
        # locked under a name no sweep matches, then renamed: it never appears unlocked
        hidden = SHM_DIR / f".{PREFIX}-lock-{owner_pid}-{token}"
        self._fd: int | None = os.open(hidden, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.rename(hidden, self.path)

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def owner_alive(owner_pid: int, token: str) -> bool:
    """True while the owner's lock is held. No lock file means the group is being torn down
    or its owner died between creating objects and its lock (never: the lock comes first).
    A lock we cannot judge (another user's, or not a plain file of ours: a squatted name, a
    directory, a link) counts as alive: its objects are not ours to remove."""
    path = SHM_DIR / object_name(owner_pid, token, OWNER_LOCK).lstrip("/")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # another user's lock (EACCES), a directory, a symlink (ELOOP)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return True
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock if we got it
    return False


def unlink_quietly(unlink, name: str) -> None:
    """posix_ipc.unlink_semaphore / unlink_shared_memory of `name`, if it still exists."""
    try:
        unlink(name)
    except posix_ipc.ExistentialError:
        pass


def pid_alive(pid: int) -> bool:
    """True if `pid` runs in our pid namespace; a zombie counts as dead (tests use this)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def owner_pid(entry: str) -> int | None:
    """The pid in the name of a /dev/shm entry of ours (None for anything else)."""
    match = _PATTERN.match(entry)
    return int(match["pid"]) if match else None


def list_objects() -> list[str]:
    """Entries of /dev/shm that shmpipe created (segments, `sem.` semaphores, owner locks)."""
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if _PATTERN.match(e))


def _unlink(entry: str) -> bool:
    match = _PATTERN.match(entry)
    name = "/" + match["name"]
    try:
        if match["sem"]:
            posix_ipc.unlink_semaphore(name)
        else:
            posix_ipc.unlink_shared_memory(name)
    except (posix_ipc.Error, OSError):  # gone already, or not ours to remove
        return False
    return True


def sweep_owner(owner_pid: int, token: str) -> int:
    """Unlink every object of one owner group, its lock last; returns how many went."""
    entries = [e for e in list_objects() if _group(e) == (owner_pid, token)]
    entries.sort(key=lambda e: e.endswith("_" + OWNER_LOCK))
    return sum(_unlink(e) for e in entries)


def sweep_dead_owners() -> int:
    """Unlink the objects of every group whose owner's lock is free; returns how many went."""
    groups: dict[tuple[int, str], int] = defaultdict(int)
    for entry in list_objects():
        groups[_group(entry)] += 1
    return sum(sweep_owner(*group) for group in groups if not owner_alive(*group))


def _group(entry: str) -> tuple[int, str]:
    match = _PATTERN.match(entry)
    return int(match["pid"]), match["token"]
