"""A named POSIX shared-memory segment mapped into this process.

The creator unlinks it on close; attachers only unmap. Unlike CPython's
`multiprocessing.shared_memory`, nothing registers the segment with a resource tracker, so an
attaching worker that exits never unlinks a segment its owner still uses (gh-82300).
"""

from __future__ import annotations

import mmap

import posix_ipc


class Segment:
    """`buffer` is the mapping; keep numpy views of it only as long as the segment is open."""

    def __init__(self, name: str, size: int, create: bool) -> None:
        flags = posix_ipc.O_CREX if create else 0
        shm = posix_ipc.SharedMemory(name, flags, size=size if create else 0)
        try:
            self.size = shm.size
            self.buffer = mmap.mmap(shm.fd, self.size)
        except BaseException:
            if create:
                shm.unlink()
            raise
        finally:
            shm.close_fd()
        self.name = name
        self.owner = create

    @classmethod
    def create(cls, name: str, size: int) -> Segment:
        return cls(name, size, create=True)

    @classmethod
    def attach(cls, name: str) -> Segment:
        return cls(name, 0, create=False)

    def close(self) -> None:
        """Unmap (views still alive keep the mapping until collected) and, if owner, unlink."""
        try:
            self.buffer.close()
        except BufferError:
            pass  # a numpy view still exports it; the mapping goes when that view is collected
        if self.owner:
            self.owner = False
            try:
                posix_ipc.unlink_shared_memory(self.name)
            except posix_ipc.ExistentialError:
                pass
