"""The control process's workers: started, watched, replaced and collected.

Each worker (shmpipe.recorder.worker_handle) talks over a socket pair carrying msgspec messages.
A worker that dies, or whose heartbeat the watchdog (shmpipe.recorder.watchdog, the one judge
of staleness) finds overdue, is killed and replaced; the replacement is told what the take asks
to replay (shmpipe.recorder.take) and picks up from the ring, so nothing is lost. A thread
cannot be killed: on the thread backend a stall fails the call instead of hanging the caller.
The supervisor keeps no episode state: every call that may replace a worker is given the take.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec
from multiprocess.connection import wait

from shmpipe.errors import WorkerError
from shmpipe.recorder.take import Take

if TYPE_CHECKING:
    from shmpipe.recorder.live import LiveTakes
from shmpipe.recorder.watchdog import Watchdog
from shmpipe.recorder.worker_handle import (
    Heartbeat,
    WorkerHandle,
    WorkerRole,
    await_ready,
    stop_workers,
)

READY_TIMEOUT_S = 30.0  # a worker's interpreter start, on a loaded machine
CHECK_EVERY_S = 0.2
STOP_TIMEOUT_S = 0.1  # at close no take is open: a worker holds nothing of value, and one
# still busy (draining a cancelled take's codec) is killed rather than waited for

log = logging.getLogger("shmpipe")
# role -> frames its replacement reads again: read by the old worker but not yet released
# (an encoder's: not yet in a fragment on disk)
Unreleased = Callable[[WorkerRole], int]


class Supervisor:
    """Workers by role, and how often each was replaced."""

    def __init__(self, backend: str, heartbeat: Heartbeat, wake: Callable[[], None],
                 stall_timeout_s: float, unreleased: Unreleased = lambda _: 0) -> None:  # fmt: skip
        self.backend, self._unreleased = backend, unreleased
        self.handles: dict[WorkerRole, WorkerHandle] = {}
        self.restarts: dict[WorkerRole, int] = {}
        self._specs: dict[WorkerRole, msgspec.Struct] = {}
        self._heartbeat, self._wake = heartbeat, wake
        self.watchdog = Watchdog(WorkerHandle.heartbeat, CHECK_EVERY_S, stall_timeout_s)

    # -- life cycle ------------------------------------------------------------------------
    def start(self, role: WorkerRole, spec: msgspec.Struct) -> None:
        self._specs[role] = spec
        self.handles[role] = WorkerHandle(role, spec, self.backend, self._heartbeat)
        self._watch()

    def await_ready(self) -> None:
        await_ready(list(self.handles.values()), READY_TIMEOUT_S)

    def stop_all(self) -> None:
        """Ask every worker to stop, all at once; kill whichever has not gone within
        STOP_TIMEOUT_S (one still draining a cancelled take's codec)."""
        handles, self.handles = list(self.handles.values()), {}
        self._watch()
        stop_workers(handles, STOP_TIMEOUT_S)

    def close(self) -> None:
        """Stop the workers, then the watchdog."""
        self.stop_all()
        self.watchdog.close()

    def _watch(self) -> None:
        self.watchdog.watch([(h, h.conn.fileno()) for h in self.handles.values()])

    # -- messages --------------------------------------------------------------------------
    def send(self, role: WorkerRole, message: msgspec.Struct, take: Take | LiveTakes) -> None:
        """Send to one worker; if it has died, replace it (`take` says what to replay)."""
        try:
            self.handles[role].send(message)
        except OSError:
            self._restart(role, take, "died (its channel closed)")

    def broadcast(self, message: msgspec.Struct, take: Take | LiveTakes) -> None:
        """Send to every worker and ring their doorbells."""
        for role in list(self.handles):
            self.send(role, message, take)
        self._wake()

    def replies(self, roles: set[WorkerRole], take: Take | LiveTakes, timeout: float,
                number: int | None = None) -> list[tuple[WorkerRole, msgspec.Struct]]:  # fmt: skip
        """The replies of `roles` to take `number` (None: to any take) that have arrived
        (waiting up to `timeout` if none has), each shown to `take` (a Take or LiveTakes)
        first; replies to other live takes stay for their own caller; a worker whose channel
        ended is replaced."""
        handles = [self.handles[role] for role in roles]
        if timeout > 0 and not any(_wanted(h.inbox, number) for h in handles):
            self.wait_for_replies(roles, timeout)
        out, live = [], take.live_numbers()
        for handle in handles:
            try:
                handle.collect()
            except (EOFError, OSError):
                self._restart(handle.role, take, "died (its channel closed)")
                continue
            kept = []
            while handle.inbox:
                reply = handle.inbox.popleft()
                take.note(handle.role, reply)
                if number is None or reply.take == number:
                    out.append((handle.role, reply))
                elif reply.take in live:
                    kept.append(reply)
            handle.inbox.extend(kept)
        return out

    def wait_for_replies(self, roles: set[WorkerRole], timeout: float) -> None:
        """Sleep until one of `roles` sent something, at most `timeout`; safe beside another
        thread replacing a worker (its closed channel just ends the wait)."""
        try:
            wait([self.handles[role].conn for role in roles if role in self.handles], timeout)
        except (OSError, ValueError):
            pass

    # -- health ----------------------------------------------------------------------------
    def supervise(self, take: Take | LiveTakes, force: bool = False) -> None:
        """Replace dead and overdue workers, and show `take` what they sent. Cheap enough for
        every add_frame: it looks only when the watchdog raised its flag (a reply, a closed
        channel, a beat standing still), or when forced."""
        if not (force or self.watchdog.attention) or not self.handles:
            return
        self.watchdog.attention = False
        for role in list(self.handles):
            handle = self.handles[role]
            ended = not self._read(handle, take)
            stalled = self.stalled_s(role)
            # ask the OS (a waitpid) only when the beat stands still or the channel ended
            if (force or stalled or ended or not handle.ready) and not handle.alive():
                self._restart(role, take, "died")
            elif overdue := (self.watchdog.overdue(handle) if handle.ready else stalled):
                if handle.process is None:
                    raise _stalled_thread(role, overdue)
                self._restart(role, take, f"stalled: no heartbeat for {overdue:.1f} s")

    def _read(self, handle: WorkerHandle, take: Take | LiveTakes) -> bool:
        """Read what the worker sent and show it to the take (a failure is noted at once; the
        replies stay for `replies`). False if its channel ended (it died)."""
        try:
            handle.collect()
        except (EOFError, OSError):
            return False
        for reply in handle.inbox:
            take.note(handle.role, reply)
        return True

    def stalled_s(self, role: WorkerRole) -> float:
        """Seconds the worker has shown no sign of life (0 while it beats); one still starting
        counts from its start, once that is longer than READY_TIMEOUT_S."""
        handle = self.handles[role]
        if not handle.ready:
            waited = time.monotonic() - handle.started
            return 0.0 if waited < READY_TIMEOUT_S else waited
        return self.watchdog.stalled_s(handle)

    def _restart(self, role: WorkerRole, take: Take | LiveTakes, why: str) -> None:
        """Kill the worker and start another, told what the take asks to replay; a WARNING
        says which, why, and how many frames it reads again."""
        old = self.handles[role]
        replayed = self._unreleased(role)
        code = old.process.poll() if old.process is not None else None
        try:
            old.collect()  # what it said before it went is kept (an EpisodeDone, say)
        except (EOFError, OSError):
            pass
        old.kill()
        log.warning("%s (pid %s) %s%s; restarted, replaying %d frames from its ring",
                    role, old.pid, why, f", exit code {code}" if code is not None else "",
                    replayed)  # fmt: skip
        self.handles[role] = WorkerHandle(role, self._specs[role], self.backend, self._heartbeat)
        self.handles[role].inbox.extend(old.inbox)
        self._watch()
        self.restarts[role] = self.restarts.get(role, 0) + 1
        told = take.replay(role)
        for message in told:  # what the old worker knew of the take
            self.send(role, message, take)
        if told:
            self._wake()


def _wanted(inbox, number: int | None) -> bool:
    return any(number is None or reply.take == number for reply in inbox)


def _stalled_thread(role: WorkerRole, stalled_s: float) -> WorkerError:
    return WorkerError(f"{role} (a thread) made no progress for {stalled_s:.1f} s; a thread "
                       "cannot be replaced: use the process backend, or a longer stall_timeout_s")
