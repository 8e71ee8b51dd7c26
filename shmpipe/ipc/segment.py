"""A named POSIX shared-memory segment mapped into this process, its memory reserved up front.

As in CPython's `multiprocessing.shared_memory`, `close` only unmaps it from this process and
`unlink` removes its name (the memory goes when the last process unmaps it): every process
closes, the creator alone unlinks, once. Unlike there, nothing registers the segment with a
resource tracker, so an attaching worker that exits never unlinks a segment its owner still uses
(gh-82300). Touching a page of /dev/shm beyond its size limit is SIGBUS, not an exception, so
`create` reserves every page with posix_fallocate first: a full /dev/shm then fails here, as a
Python exception.
"""

from __future__ import annotations

import errno
import mmap
import os
import resource

import posix_ipc

from shmpipe.errors import SharedMemoryError
from shmpipe.ipc.names import unlink_quietly

SHM_DIR = "/dev/shm"
MIB = 1024 * 1024


def shm_free_bytes() -> int:
    """Free bytes of the tmpfs behind POSIX shared memory (Docker gives 64 MiB by default)."""
    stats = os.statvfs(SHM_DIR)
    return stats.f_bavail * stats.f_frsize


def shm_shortage_error(needed: int, free: int, what: str) -> SharedMemoryError:
    return SharedMemoryError(
        f"{what} need {needed / MIB:.0f} MiB of shared memory ({SHM_DIR}) but only "
        f"{free / MIB:.0f} MiB are free. Give the machine or container more (Docker: "
        f"`docker run --shm-size={_suggest(needed)}`; Kubernetes: an emptyDir with medium: "
        "Memory on /dev/shm), or make the rings smaller (ring_slots=, fewer or smaller cameras)."
    )


def check_shm_usable(objects: int) -> None:
    """/dev/shm must be writable with `objects` free inodes (every ring, doorbell and lock is
    one); SharedMemoryError saying how to fix it otherwise. Checked before anything is made."""
    try:
        stats = os.statvfs(SHM_DIR)
    except OSError as exc:
        raise SharedMemoryError(f"{SHM_DIR} is not usable ({exc}): POSIX shared memory needs a "
                                f"tmpfs mounted on {SHM_DIR}") from None  # fmt: skip
    if stats.f_flag & os.ST_RDONLY:
        raise SharedMemoryError(
            f"{SHM_DIR} is mounted read-only, and the rings are made there. Mount a writable "
            f"tmpfs on it (`mount -t tmpfs -o size=1g tmpfs {SHM_DIR}`; Docker: --shm-size, not "
            f"a read-only {SHM_DIR})"
        )
    if stats.f_files and stats.f_favail < objects:
        raise SharedMemoryError(
            f"{SHM_DIR} has {stats.f_favail} free inodes but {objects} objects are needed (a "
            f"ring and a doorbell per camera, the stats block, locks). Remove stale files from "
            f"{SHM_DIR} or remount it with more (`mount -o remount,nr_inodes=<n> {SHM_DIR}`)"
        )


def shm_creation_error(exc: BaseException) -> SharedMemoryError:
    """A failure to create a shared object, said with /dev/shm and what to do (or with
    `ulimit -v`, when mapping it ran out of address space)."""
    address_space, _ = resource.getrlimit(resource.RLIMIT_AS)
    if getattr(exc, "errno", None) == errno.ENOMEM and address_space != resource.RLIM_INFINITY:
        return SharedMemoryError(
            f"cannot map shared memory: {exc}; a limit is short: ulimit -v "
            f"{address_space // 1024} (KiB) leaves no room for the rings"
        )
    return SharedMemoryError(
        f"cannot create shared memory in {SHM_DIR}: {exc}. Check that {SHM_DIR} is a writable "
        f"tmpfs with free space and inodes (`df -h -i {SHM_DIR}`)"
    )


def _suggest(needed: int) -> str:
    mib = 64
    while mib * MIB < needed * 1.25:
        mib *= 2
    return f"{mib}m" if mib < 1024 else f"{mib // 1024}g"


class Segment:
    """`buffer` is the mapping; keep numpy views of it only as long as the segment is open."""

    buffer: mmap.mmap | None = None  # so close() runs from any half-built state

    def __init__(self, name: str, size: int, create: bool) -> None:
        flags = posix_ipc.O_CREX if create else 0
        shm = posix_ipc.SharedMemory(name, flags, size=size if create else 0)
        try:
            if create:
                _reserve(shm.fd, size, name)
            self.size = shm.size
            self.buffer = mmap.mmap(shm.fd, self.size)
        except BaseException:
            if create:
                shm.unlink()
            raise
        finally:
            shm.close_fd()
        self.name = name

    @classmethod
    def create(cls, name: str, size: int) -> Segment:
        return cls(name, size, create=True)

    @classmethod
    def attach(cls, name: str) -> Segment:
        return cls(name, 0, create=False)

    def close(self) -> None:
        """Unmap from this process (views still alive keep the mapping until collected)."""
        if self.buffer is None:
            return
        try:
            self.buffer.close()
        except BufferError:
            pass  # a numpy view still exports it; the mapping goes when that view is collected

    def unlink(self) -> None:
        """Remove the name (the creator's call): nobody can attach any more, and the memory is
        freed once every process has closed it. Removing a name already gone is no error."""
        unlink_quietly(posix_ipc.unlink_shared_memory, self.name)


def _reserve(fd: int, size: int, name: str) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.ENOMEM):
            raise
        raise shm_shortage_error(size, shm_free_bytes(), f"shared memory {name}") from None
