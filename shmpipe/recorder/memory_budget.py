"""How much memory a recording may use: the host's RAM, or the cgroup's limit where there is one.

In a container (or a systemd unit with MemoryMax) the kernel kills the control process once the
cgroup's `memory.max` is reached, and the rings (/dev/shm pages are charged to the cgroup that
touches them), the workers and the backlog all count. So start() sizes the rings and the backlog
from the room the cgroup leaves, and refuses what cannot fit, naming the limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shmpipe.errors import ConfigError

CGROUP_FS = Path("/sys/fs/cgroup")
MIB = 1024 * 1024
# Memory one encoder worker takes besides the rings: the interpreter and PyAV, plus the codec's
# pictures in flight (SVT-AV1 keeps tens of frames, as YUV and references).
WORKER_BASE_BYTES = 80 * MIB
WORKER_FRAMES = 24  # frame sizes (RGB) of codec state per encoder
BACKLOG_SHARE = 0.5  # of the room left after rings and workers: past it the backlog spills


@dataclass(frozen=True)
class MemoryLimit:
    """The tightest `memory.max` over this process's cgroup and its parents, and its use now."""

    limit: int
    used: int
    where: str  # the file the limit was read from

    @property
    def room(self) -> int:
        return max(0, self.limit - self.used)


def cgroup_limit(proc_cgroup: Path = Path("/proc/self/cgroup"),
                 fs: Path = CGROUP_FS) -> MemoryLimit | None:  # fmt: skip
    """The memory limit of this process's cgroup (v2 `memory.max`, v1
    `memory.limit_in_bytes`), or None if there is none (or it cannot be read)."""
    return controller_limit("memory", ("memory.max", "memory.current"),
                            ("memory.limit_in_bytes", "memory.usage_in_bytes"),
                            proc_cgroup, fs)  # fmt: skip


def controller_limit(controller: str, v2_files: tuple[str, str], v1_files: tuple[str, str],
                     proc_cgroup: Path = Path("/proc/self/cgroup"),
                     fs: Path = CGROUP_FS) -> MemoryLimit | None:  # fmt: skip
    """The tightest limit of `controller` over this process's cgroups and their parents, read
    from the (limit, usage) files of cgroup v2 or v1; None if there is none."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and (fs / "cgroup.controllers").exists():
            found = tightest_limit(fs, path.lstrip("/"), *v2_files)
        elif controller in controllers.split(","):
            found = tightest_limit(fs / controller, path.lstrip("/"), *v1_files)
        else:
            continue
        if found is not None:
            return found
    return None


def tightest_limit(base: Path, path: str, limit_file: str, usage_file: str) -> MemoryLimit | None:
    best = None
    group = base / path
    while True:
        limit = _read_bytes(group / limit_file)
        if limit is not None and (best is None or limit < best.limit):
            used = _read_bytes(group / usage_file) or 0
            best = MemoryLimit(limit, used, str(group / limit_file))
        if group == base or base not in group.parents:
            return best
        group = group.parent


def _read_bytes(path: Path) -> int | None:
    """A limit in bytes; None for "max", absent files, and v1's "no limit" (near 2**63)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text.isdigit() or int(text) >= 2**62:
        return None
    return int(text)


def host_ram() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def worker_bytes(frame_bytes: dict[str, int]) -> int:
    """Memory the encoder workers of cameras with these frame sizes take, as estimated."""
    return sum(WORKER_BASE_BYTES + WORKER_FRAMES * size for size in frame_bytes.values())


def check_fits(limit: MemoryLimit, rings: int, workers: int, backlog: int | None) -> int:
    """The backlog's memory allowance under `limit`: as asked (refused if it does not fit), or
    by default half the room that rings and workers leave. ConfigError naming the limit if the
    rings and workers alone do not fit."""
    spare = limit.room - rings - workers
    if spare <= 0 or (backlog is not None and backlog > spare):
        asked = "" if backlog is None else f" and backlog_bytes {backlog / MIB:.0f} MiB"
        raise ConfigError(
            f"memory limit {limit.limit / MIB:.0f} MiB ({limit.where}; {limit.used / MIB:.0f} "
            f"MiB in use): the rings ({rings / MIB:.0f} MiB) and the encoder workers (about "
            f"{workers / MIB:.0f} MiB){asked} do not fit in the {limit.room / MIB:.0f} MiB left. "
            "Raise the container's memory limit, or record fewer or smaller cameras, smaller "
            "rings (ring_slots=) or a smaller backlog_bytes"
        )
    return backlog if backlog is not None else int(spare * BACKLOG_SHARE)
