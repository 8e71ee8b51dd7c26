"""Names of the POSIX shared-memory objects shmpipe creates, and the sweep of dead owners' objects.

Every segment and semaphore is named `/shmpipe_<owner pid>_<token>_<what>`. Named objects outlive
a killed process, so the pid in the name lets any later process tell whether the owner is gone
and remove what it left (`sweep_dead_owners`), and lets a worker clean up after its dead owner.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import posix_ipc

PREFIX = "shmpipe"
SHM_DIR = Path("/dev/shm")
_PATTERN = re.compile(rf"^(?P<sem>sem\.)?(?P<name>{PREFIX}_(?P<pid>\d+)_(?P<token>[0-9a-f]+)_.+)$")


def new_token() -> str:
    """A short random token so that several pipelines in one process never share a name."""
    return secrets.token_hex(4)


def object_name(owner_pid: int, token: str, what: str) -> str:
    return f"/{PREFIX}_{owner_pid}_{token}_{what}"


def pid_alive(pid: int) -> bool:
    """True if `pid` runs; a zombie (killed, not yet reaped) counts as dead."""
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


def _unlink(entry: str) -> bool:
    match = _PATTERN.match(entry)
    if match is None:
        return False
    name = "/" + match["name"]
    try:
        if match["sem"]:
            posix_ipc.unlink_semaphore(name)
        else:
            posix_ipc.unlink_shared_memory(name)
    except posix_ipc.ExistentialError:
        return False
    return True


def owner_pid(entry: str) -> int | None:
    """The pid in the name of a /dev/shm entry of ours (None for anything else)."""
    match = _PATTERN.match(entry)
    return int(match["pid"]) if match else None


def list_objects() -> list[str]:
    """Entries of /dev/shm that shmpipe created (segments and `sem.` semaphores)."""
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if _PATTERN.match(e))


def sweep_owner(owner_pid: int, token: str | None = None) -> int:
    """Unlink every object of one owner (and token, if given); returns how many went."""
    removed = 0
    for entry in list_objects():
        match = _PATTERN.match(entry)
        if int(match["pid"]) == owner_pid and (token is None or match["token"] == token):
            removed += _unlink(entry)
    return removed


def sweep_dead_owners() -> int:
    """Unlink objects whose owner process no longer exists; returns how many went."""
    removed = 0
    for entry in list_objects():
        pid = int(_PATTERN.match(entry)["pid"])
        if pid != os.getpid() and not pid_alive(pid):
            removed += _unlink(entry)
    return removed
