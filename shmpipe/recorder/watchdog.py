"""A thread that watches the workers for the control loop, so add_frame only reads a flag.

It wakes at once when a worker's channel has something (a reply, or end of file: the worker
died) and otherwise every `interval_s`, when it compares each worker's heartbeat with the last
it saw; a channel with something, or a beat standing still for two intervals, raises
`attention`. It only reads: the control thread acts (Supervisor.supervise) and lowers the flag.
Looking at one worker from add_frame cost ~40 us on a cold cache, every few frames; this
thread sleeps in poll(2), which releases the GIL, and is awake a few microseconds at a time.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Hashable

Heartbeat = Callable[[Hashable], tuple[int, bool]]  # worker -> (beat count, flushing)


class Watchdog:
    def __init__(self, heartbeat: Heartbeat, interval_s: float) -> None:
        self.attention = False  # raised here, lowered by the control thread once it looked
        self._heartbeat, self._interval_ms = heartbeat, int(interval_s * 1000)
        self._watched: tuple[tuple[Hashable, int], ...] = ()  # (worker, channel fd)
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="shmpipe-watchdog", daemon=True)
        self._thread.start()

    def watch(self, workers: list[tuple[Hashable, int]]) -> None:
        """Watch these (worker, channel fd) from now on, instead of the ones before."""
        self._watched = tuple(workers)
        self._poke()

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
        beats: dict[Hashable, tuple[int, float]] = {}  # worker -> (beat, when it changed)
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
            self.attention = self._look(watched, busy, beats)

    def _look(self, watched, busy: set[int], beats: dict) -> bool:
        """True if a worker's channel has something or its beat stood still too long."""
        now, attention = time.monotonic(), False
        stale = 2 * self._interval_ms / 1000
        for worker, fd in watched:
            beat = self._heartbeat(worker)[0]
            last = beats.get(worker)
            if last is None or last[0] != beat:
                beats[worker] = (beat, now)
            elif now - last[1] > stale:
                attention = True
            attention |= fd in busy
        return attention
