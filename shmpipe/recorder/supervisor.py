"""The control process's workers: started, told about episodes, watched, and replaced.

Each worker (shmpipe.recorder.worker_handle) talks over a socket pair carrying msgspec messages. The
supervisor numbers episodes by take, tells every worker where a take starts and ends, and
collects their answers. A worker that dies, or stops beating (SIGSTOP, a deadlock) for
`stall_timeout_s`, is killed and replaced; the replacement is told the take in progress and
picks up from the ring, so nothing is lost. A thread cannot be killed: on the thread backend
a stall fails the episode instead of hanging the caller. A watchdog thread
(shmpipe.recorder.watchdog) notices; the control thread acts, in its next call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec
from multiprocess.connection import wait

from shmpipe import messages
from shmpipe.errors import WorkerError
from shmpipe.recorder.take_failures import TakeFailures, failure_error
from shmpipe.recorder.watchdog import Watchdog
from shmpipe.recorder.worker_handle import WorkerHandle, WorkerRole, await_ready, stop_workers

READY_TIMEOUT_S = 30.0  # a worker's interpreter start, on a loaded machine
CHECK_EVERY_S = 0.2
FLUSH_STALL_FACTOR = 12  # a codec flush may take this many stall timeouts before it counts
MAX_RESTARTS_PER_WAIT = 5
CANCEL_WAIT_S = 0.5  # for workers to confirm a cancel (they answer within one frame)
STOP_TIMEOUT_S = 0.1  # at close no take is open: a worker holds nothing of value, and one
# still busy (draining a cancelled take's codec) is killed rather than waited for

log = logging.getLogger("shmpipe")
Heartbeat = Callable[[WorkerRole], tuple[int, bool]]  # role -> (beat count, flushing)
# role -> frames its replacement reads again: read by the old worker but not yet released
# (an encoder's: not yet in a fragment on disk)
Unreleased = Callable[[WorkerRole], int]
# Called while replies are awaited, with those in so far (role -> reply): the recorder feeds
# backlogged frames into the rings and writes what is final of the episode meanwhile.
Between = Callable[[dict], None]


class Supervisor:
    """Workers by role, the take counter, and the take's replay."""

    def __init__(self, backend: str, heartbeat: Heartbeat, wake: Callable[[], None],
                 stall_timeout_s: float, unreleased: Unreleased = lambda _: 0) -> None:  # fmt: skip
        self.backend, self._unreleased = backend, unreleased
        self.handles: dict[WorkerRole, WorkerHandle] = {}
        self.restarts: dict[WorkerRole, int] = {}
        self.take = 0
        self.take_restarts = 0  # workers replaced since the take opened
        self._specs: dict[WorkerRole, msgspec.Struct] = {}
        self._heartbeat, self._wake = heartbeat, wake
        self._stall_timeout = stall_timeout_s
        self.watchdog = Watchdog(heartbeat, CHECK_EVERY_S)
        self._open: dict[WorkerRole, messages.StartEpisode] | None = None  # per encoder, while open
        self._finishing: messages.FinishEpisode | None = None
        self.failures = TakeFailures()  # of the open take, as workers report them

    # -- life cycle ------------------------------------------------------------------------
    def start(self, role: WorkerRole, spec: msgspec.Struct) -> None:
        self._specs[role] = spec
        self.handles[role] = WorkerHandle(role, spec, self.backend)
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
        self.watchdog.watch([(role, h.conn.fileno()) for role, h in self.handles.items()])

    # -- episodes --------------------------------------------------------------------------
    def open_take(self, starts: dict[WorkerRole, messages.StartEpisode]) -> int:
        """Number a new take and tell each encoder where its video goes; returns the take."""
        self.take += 1
        self.take_restarts = 0
        self.failures.clear()
        self._open = {
            role: msgspec.structs.replace(m, take=self.take) for role, m in starts.items()
        }
        for role, message in self._open.items():
            self.send(role, message)
        return self.take

    def close_take(self) -> None:
        self._open, self._finishing = None, None
        self.failures.clear()

    def finish_take(self, num_frames: int, between: Between) -> dict:
        """Tell every worker the take has `num_frames` frames and collect each EpisodeDone,
        calling `between(the replies so far)` while waiting (see Between)."""
        self.supervise(force=True)
        if (error := self.failures.error()) is not None:
            raise error
        self._finishing = messages.FinishEpisode(take=self.take, num_frames=num_frames)
        self._broadcast(self._finishing)
        return self._collect(messages.EpisodeDone, between, give_up_s=None)

    def cancel_take(self, wait_s: float = CANCEL_WAIT_S) -> None:
        """Every worker drops the take; their answers are awaited at most `wait_s`. Messages
        are handled in order, so a worker that answers later still skips the take's frames and
        deletes its files before it starts the next take; a worker restarted meanwhile never
        heard of the take (it skips frames of takes it was not told about)."""
        self._finishing = None
        self._broadcast(messages.CancelEpisode(take=self.take))
        if wait_s > 0:
            wait_s = min(wait_s, self._stall_timeout)
            self._collect(messages.EpisodeCancelled, lambda done: None, give_up_s=wait_s)
        self._open = None

    def _broadcast(self, message: msgspec.Struct) -> None:
        for role in list(self.handles):
            self.send(role, message)
        self._wake()

    def _collect(self, kind: type, between: Between, give_up_s: float | None) -> dict:
        waiting = set(self.handles)
        restarts = dict(self.restarts)
        done = {}
        deadline = None if give_up_s is None else time.monotonic() + give_up_s
        while waiting:
            between(done)
            self.supervise()
            for role in [r for r in waiting if self.restarts.get(r) != restarts.get(r)]:
                if kind is messages.EpisodeCancelled:
                    waiting.discard(role)  # the successor never heard of the take
                elif self.restarts[role] - restarts.get(role, 0) > MAX_RESTARTS_PER_WAIT:
                    raise WorkerError(f"{role} keeps failing; the episode is lost")
            for role, reply in self._replies(waiting, 0.005):
                failed = isinstance(reply, messages.WorkerFailed) and reply.take == self.take
                if failed and kind is not messages.EpisodeCancelled:
                    raise failure_error(role, reply)
                if isinstance(reply, kind) and reply.take == self.take:
                    done[role] = reply
                    waiting.discard(role)
            if deadline is not None and time.monotonic() > deadline:
                break
        return done

    # -- messages and health ---------------------------------------------------------------
    def send(self, role: WorkerRole, message: msgspec.Struct) -> None:
        """Send to one worker; if it has died, replace it (the replacement replays the take)."""
        try:
            self.handles[role].send(message)
        except OSError:
            self._restart(role, "died (its channel closed)")

    def _replies(
        self, roles: set[WorkerRole], timeout: float
    ) -> list[tuple[WorkerRole, msgspec.Struct]]:
        handles = [self.handles[role] for role in roles]
        if not any(h.inbox for h in handles):
            wait([h.conn for h in handles], timeout)
        out = []
        for handle in handles:
            try:
                handle.collect()
            except (EOFError, OSError):
                self._restart(handle.role, "died (its channel closed)")
                continue
            while handle.inbox:
                out.append((handle.role, handle.inbox.popleft()))
        return out

    def supervise(self, force: bool = False) -> None:
        """Replace dead and stalled workers. Cheap enough for every add_frame: it looks only
        when the watchdog raised its flag (a reply, a closed channel, a beat standing still),
        or when forced."""
        if not (force or self.watchdog.attention) or not self.handles:
            return
        self.watchdog.attention = False
        roles = list(self.handles)
        for role in roles:
            handle = self.handles[role]
            ended = self._open is not None and not self._note_failures(handle)
            stalled = self.stalled_s(role)
            # ask the OS (a waitpid) only when the beat stands still or the channel ended
            if (force or stalled or ended or not handle.ready) and not handle.alive():
                self._restart(role, "died")
            elif stalled > self._allowed_stall(handle):
                if handle.process is None:
                    raise _stalled_thread(role, stalled)
                self._restart(role, f"stalled: no heartbeat for {stalled:.1f} s")

    def _note_failures(self, handle: WorkerHandle) -> bool:
        """Read what the worker sent; a failure of the open take is noted at once. False if
        its channel ended (it died: supervise() replaces it)."""
        try:
            handle.collect()
        except (EOFError, OSError):
            return False
        for reply in handle.inbox:
            self.failures.note(handle.role, reply, self.take)
        return True

    def stalled_s(self, role: WorkerRole) -> float:
        """Seconds since the worker's heartbeat last moved (0 while it beats)."""
        handle, now = self.handles[role], time.monotonic()
        if not handle.ready:
            try:
                handle.collect()
            except (EOFError, OSError):
                return 0.0  # it died: supervise() replaces it
            return 0.0 if now - handle.started < READY_TIMEOUT_S else now - handle.started
        beat = self._heartbeat(role)
        if beat[0] != (handle.beat or (None,))[0]:
            handle.beat, handle.beat_at = beat, now
        stalled = now - handle.beat_at
        return stalled if stalled > 2 * CHECK_EVERY_S else 0.0

    def _allowed_stall(self, handle: WorkerHandle) -> float:
        flushing = handle.beat is not None and handle.beat[1]
        return self._stall_timeout * (FLUSH_STALL_FACTOR if flushing else 1)

    def _restart(self, role: WorkerRole, why: str) -> None:
        """Kill the worker and start another, which replays the open take; a WARNING says which,
        why, and how many frames it reads again."""
        old = self.handles[role]
        replayed = self._unreleased(role)
        code = old.process.poll() if old.process is not None else None
        old.kill()
        log.warning("%s (pid %s) %s%s; restarted, replaying %d frames from its ring",
                    role, old.pid, why, f", exit code {code}" if code is not None else "",
                    replayed)  # fmt: skip
        self.handles[role] = WorkerHandle(role, self._specs[role], self.backend)
        self._watch()
        self.restarts[role] = self.restarts.get(role, 0) + 1
        self.take_restarts += 1
        if self._open is not None:  # replay what the old worker knew of the take
            if role in self._open:
                self.send(role, self._open[role])
            if self._finishing is not None:
                self.send(role, self._finishing)
            self._wake()


def _stalled_thread(role: WorkerRole, stalled_s: float) -> WorkerError:
    return WorkerError(f"{role} (a thread) made no progress for {stalled_s:.1f} s; a thread "
                       "cannot be replaced: use the process backend, or a longer stall_timeout_s")
