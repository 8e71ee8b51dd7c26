"""A doorbell: a named POSIX semaphore that a worker sleeps on until something is for it.

It is rung only while its worker says it sleeps (a flag in the ring header): the stats
worker's by add_frame (at most once per frame, and only after a quiet second: while frames come
the stats worker polls), and each encoder's by the stats worker, which relays
(workers/stats.py). A sleep also ends at a short timeout, so control messages are seen and a
missed ring costs at most that. The count may run ahead of what is left to do; a woken
worker always re-reads the ring and its messages, so an extra ring only costs one empty loop.
Like a Segment, `close` lets go of it in this process and `unlink` (the creator's) removes it.
"""

from __future__ import annotations

import posix_ipc

from shmpipe.ipc.names import unlink_quietly


class Doorbell:
    def __init__(self, name: str, create: bool) -> None:
        flags = posix_ipc.O_CREX if create else 0
        self._sem = posix_ipc.Semaphore(name, flags, initial_value=0)
        self.name = name

    @classmethod
    def create(cls, name: str) -> Doorbell:
        return cls(name, create=True)

    @classmethod
    def attach(cls, name: str) -> Doorbell:
        return cls(name, create=False)

    def ring(self) -> None:
        self._sem.release()

    def wait(self, timeout: float) -> bool:
        """Sleep until rung or `timeout` seconds pass; True if rung. A signal that interrupts
        the sleep (its Python handler has run by then) only ends it early: callers loop."""
        try:
            self._sem.acquire(timeout)
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            return False
        return True

    def close(self) -> None:
        try:
            self._sem.close()
        except posix_ipc.ExistentialError:
            pass

    def unlink(self) -> None:
        """Remove the name (the creator's call); processes that opened it keep it until close."""
        unlink_quietly(posix_ipc.unlink_semaphore, self.name)
