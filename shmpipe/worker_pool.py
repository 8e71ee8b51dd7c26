"""The control process's set of workers: start them, message them, and restart any that died.

A worker is known by its label (a camera name, or "stats"). A dead worker is replaced by a new
one started from the same spec; the new one is not waited for (its interpreter starts in the
background) and the pool calls `on_restart(label)` so the owner can re-send what the episode in
progress needs. Messages sent before the new worker is ready simply wait in its socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from shmpipe import messages
from shmpipe.worker_host import WorkerHandle, await_ready, start_worker, wait_any

SUPERVISE_EVERY_S = 0.2


class WorkerPool:
    def __init__(self, backend: str, on_restart: Callable[[str], None]) -> None:
        self.backend = backend
        self.handles: dict[str, WorkerHandle] = {}
        self._specs: dict[str, tuple[str, msgspec.Struct]] = {}
        self._on_restart = on_restart
        self._next_check = 0.0
        self.restarts: dict[str, int] = {}

    def start(self, kind: str, label: str, spec: msgspec.Struct) -> None:
        self._specs[label] = (kind, spec)
        self.handles[label] = start_worker(kind, label, spec, self.backend)

    def await_all_ready(self) -> None:
        for handle in self.handles.values():
            await_ready(handle)

    def send(self, label: str, message: msgspec.Struct) -> None:
        """Send to one worker; if it has died, restart it (the restart replays the episode)."""
        try:
            self.handles[label].send(message)
        except OSError:
            self._restart(label)

    def broadcast(self, message: msgspec.Struct) -> None:
        for label in list(self.handles):
            self.send(label, message)

    def supervise(self, force: bool = False) -> list[str]:
        """Restart dead workers; cheap enough for every add_frame (checks at most every 0.2 s)."""
        now = time.monotonic()
        if not force and now < self._next_check:
            return []
        self._next_check = now + SUPERVISE_EVERY_S
        dead = [label for label, h in self.handles.items() if not h.alive()]
        for label in dead:
            self._restart(label)
        return dead

    def _restart(self, label: str) -> None:
        old = self.handles[label]
        if old.process is not None and old.process.poll() is None:
            old.process.kill()
        if old.process is not None:
            old.process.wait()
        old.conn.close()
        kind, spec = self._specs[label]
        self.handles[label] = start_worker(kind, label, spec, self.backend)
        self.restarts[label] = self.restarts.get(label, 0) + 1
        self._on_restart(label)

    def replies(self, labels: list[str], timeout: float) -> list[tuple[str, messages.FromWorker]]:
        """Replies that arrive within `timeout` from the workers `labels`. A worker that hung up
        is restarted (its reply never comes; the restart re-sends what it needs)."""
        handles = [self.handles[label] for label in labels]
        out = []
        for handle in wait_any(handles, timeout):
            try:
                reply = handle.receive(0)
            except (EOFError, OSError):
                self._restart(handle.label)
                continue
            if reply is not None and not isinstance(reply, messages.Ready):
                out.append((handle.label, reply))
        return out

    def stop_all(self) -> None:
        for handle in self.handles.values():
            try:
                handle.stop()
            except Exception:
                pass
        self.handles = {}
