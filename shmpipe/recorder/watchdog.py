"""A thread that watches the workers for the control loop, so add_frame only reads a flag.

It wakes at once when a worker's channel has something (a reply, or end of file: the worker
died) and otherwise every `interval_s`, when it compares each worker's heartbeat with the last
it saw; a channel with something, or a beat standing still for two intervals, raises
`attention`. It only reads: the control thread acts (Supervisor.supervise) and lowers the flag.
It is the one judge of staleness: `stalled_s` and `overdue` answer from the same table of beats.
Looking at one worker from add_frame cost ~40 us on a cold cache, every few frames; this
thread sleeps in poll(2), which releases the GIL, and is awake a few microseconds at a time.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Hashable

from shmpipe.system import priority

Heartbeat = Callable[[Hashable], tuple[int, bool]]  # worker -> (beat count, flushing)


FLUSH_STALL_FACTOR = 12  # a codec flush may take this many stall timeouts before it counts


class Watchdog:
    """Watches (worker, channel fd) pairs; `stall_timeout_s` is how long a beat may stand still
    before `overdue` (FLUSH_STALL_FACTOR times that while the worker says it flushes)."""

    def __init__(self, heartbeat: Heartbeat, interval_s: float,
                 stall_timeout_s: float = float("inf")) -> None:  # fmt: skip
        self.attention = False  # raised here, lowered by the control thread once it looked
        self._heartbeat, self._interval_ms = heartbeat, int(interval_s * 1000)
        self._stale_s, self.stall_timeout_s = 2 * interval_s, stall_timeout_s
        self._watched: tuple[tuple[Hashable, int], ...] = ()  # (worker, channel fd)
        # worker -> (beat, flushing, when the beat last moved); written by both threads
        self._beats: dict[Hashable, tuple[int, bool, float]] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="shmpipe-watchdog", daemon=True)
        self._thread.start()

    def watch(self, workers: list[tuple[Hashable, int]]) -> None:
        """Watch these (worker, channel fd) from now on, instead of the ones before (a
        replaced worker is a new key: its beat is judged afresh)."""
        self._watched = tuple(workers)
        keep = {worker for worker, _ in workers}
        self._beats = {w: beat for w, beat in self._beats.items() if w in keep}
        self._poke()

    def stalled_s(self, worker: Hashable) -> float:
        """Seconds the worker's beat has stood still, once that is over two intervals (0
        while it beats)."""
        return self._seen(worker, time.monotonic())[0]

    def overdue(self, worker: Hashable) -> float:
        """stalled_s if the beat stood still longer than the worker is allowed, else 0."""
        stalled, flushing = self._seen(worker, time.monotonic())
        allowed = self.stall_timeout_s * (FLUSH_STALL_FACTOR if flushing else 1)
        return stalled if stalled > allowed else 0.0

    def _seen(self, worker: Hashable, now: float) -> tuple[float, bool]:
        """Read the worker's beat into the table: (seconds stalled, or 0; flushing)."""
        beat, flushing = self._heartbeat(worker)
        last = self._beats.get(worker)
        if last is None or last[0] != beat:
            self._beats[worker] = (beat, flushing, now)
            return 0.0, flushing
        stalled = now - last[2]
        return (stalled if stalled > self._stale_s else 0.0), last[1]

    def close(self) -> None:
        """Stop the thread (before the heartbeats' memory goes) and close its pipe."""
        if self._thread is None:
            return
        self._stopping = True
        self._poke()
        self._thread.join()
        self._thread = None
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _poke(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is full of pokes already

    def _run(self) -> None:
        priority.leave_realtime()  # not the control loop's real-time policy
        poked_only = select.poll()  # while attention waits for the control thread
        poked_only.register(self._wake_r, select.POLLIN)
        poller, registered = None, None
        while not self._stopping:
            watched = self._watched
            if watched is not registered:
                poller, registered = select.poll(), watched
                poller.register(self._wake_r, select.POLLIN)
                for _, fd in watched:
                    poller.register(fd, select.POLLIN)
            events = (poked_only if self.attention else poller).poll(self._interval_ms)
            busy = {fd for fd, _ in events}
            if self._wake_r in busy:
                os.read(self._wake_r, 4096)
            if self._stopping or self.attention:
                continue
            self.attention = self._look(watched, busy)

    def _look(self, watched, busy: set[int]) -> bool:
        """True if a worker's channel has something or its beat stood still too long."""
        now, attention = time.monotonic(), False
        for worker, fd in watched:
            attention |= fd in busy or self._seen(worker, now)[0] > 0
        return attention
