"""How a take ends when it is not committed in the caller's thread: handed to the background, or
discarded (cancel_episode(), close()).

Background commits: finish_episode(wait=False) hands its FINISHING take to one thread, which
takes the commit steps of shmpipe.recorder.finish for each take, in order, as its encoders get
done, while the control loop records the next episode.

One thread and one queue, so episodes commit in the order they were finished (the dataset
stages one episode at a time). A commit that fails discards its own episode only (later ones
take its index: indices stay consecutive); it is logged, kept for status(), and raised by its
handle's result(). The thread shares the rings, the backlog and the workers' channels with the
loop through the session lock, which it holds only while it feeds frames and reads replies.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from contextlib import ExitStack

from shmpipe.dataset.rows import EpisodeRows
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.recorder.finish import begin, complete, discard
from shmpipe.recorder.results import EpisodeResult, PipelineStatus
from shmpipe.recorder.session import Session
from shmpipe.recorder.take import COMMITTED, FINISHING, LIVE, ROLLING, Take
from shmpipe.system import priority

log = logging.getLogger("shmpipe")


class FinishHandle:
    """An episode committing in the background (as a concurrent.futures.Future): `result()`
    waits for its EpisodeResult (or raises what failed it: the episode is then discarded),
    `done()` says whether it has. `episode_index` is the index it was recorded as; should an
    earlier background commit fail, it commits one lower (result().episode_index is final)."""

    def __init__(self, take: Take) -> None:
        self.episode_index, self.num_frames = take.episode, take.frames
        self.total_tasks = int(take.rows.task_indices().max()) + 1  # the dataset's, once in
        self._future: Future[EpisodeResult] = Future()

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> EpisodeResult:
        """The committed episode; TimeoutError if it is not committed within `timeout` s."""
        return self._future.result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._future.exception(timeout)

    def add_done_callback(self, fn) -> None:
        """Call fn(handle) once it is done, in the committing thread (or now if done)."""
        self._future.add_done_callback(lambda _: fn(self))

    def __repr__(self) -> str:
        state = "pending" if not self.done() else ("failed" if self.exception() else "committed")
        return f"FinishHandle(episode {self.episode_index}, {self.num_frames} frames, {state})"


class Committer:
    """Commits FINISHING takes in the background, one at a time, in order."""

    def __init__(self, session: Session, dataset: DatasetWriter, stack: ExitStack) -> None:
        self._session, self._dataset = session, dataset
        self._queue: deque[tuple[Take, FinishHandle, float]] = deque()
        self._changed = threading.Condition()
        self._busy = 0  # takes submitted and not yet committed or discarded
        # past the highest index a committed or committing take was recorded as: a take's
        # index names its videos while it records, so no two live takes share one
        self.issued = dataset.next_episode_index
        self.failures: list[str] = []  # each failed background commit, as logged
        self._lost: list[int] = []  # the indices failed commits were recorded as
        self._thread: threading.Thread | None = None
        stack.callback(self.stop)  # before the session's objects go

    @property
    def pending(self) -> int:
        """Episodes submitted whose commit has not ended."""
        return self._busy

    def hand_over(self, take: Take, rows: EpisodeRows) -> FinishHandle:
        """finish_episode(wait=False): tell the workers the OPEN take is finished (here, before
        the next take's first frame) and queue its commit; `session.live.current` is then its
        follower, a new take with `rows` (or its successor if telling them failed)."""
        started = time.perf_counter()
        try:
            begin(take, self._session, self._dataset, alone=not self.pending)
        finally:
            if take.state is not FINISHING:  # discarded
                self._session.live.current = take.successor(self.next_index())
        with self._session.lock:
            handle = self._submit(take, started)
            self._session.live.current = take.follower(self.next_index(), rows)
        return handle

    def discard_current(self, wait_s: float, stop: bool = False) -> None:
        """cancel_episode / close: discard the current take (its files with it unless commits
        are pending: the workers delete theirs); its successor is then current."""
        take = self._session.live.current
        try:
            discard(take, self._session, self._dataset, wait_s, stop, alone=not self.pending)
        finally:
            self._session.live.current = take.successor(self.next_index())

    def _submit(self, take: Take, started: float) -> FinishHandle:
        """Queue the FINISHING take (its FinishEpisode sent); the caller holds the session
        lock, so the take is live for the workers' replies before anything else runs."""
        handle = FinishHandle(take)
        self._session.live.finishing.append(take)
        with self._changed:
            self._busy += 1
            self.issued = max(self.issued, take.episode + 1)
            self._queue.append((take, handle, started))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shmpipe-commit",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            self._changed.notify_all()
        return handle

    def wait_all(self, timeout: float | None = None) -> bool:
        """Wait until every submitted episode is committed or discarded; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._busy == 0, timeout)

    def finish_all(self) -> None:
        """wait_all for close(); interrupted, a commit still waiting for replies gives up."""
        try:
            self.wait_all()
        finally:
            self._session.closing = True

    def close(self) -> None:
        """Pipeline.close(): finish_all, then discard the open take if there is one, saying so
        on the `shmpipe` logger (a warning: only finish_episode() keeps frames; a take still
        rolling kept nothing, so that is only noted)."""
        self.finish_all()
        take = self._session.live.current
        if take.state not in LIVE:
            return
        say = log.info if take.state is ROLLING else log.warning
        say("close(): episode %d discarded with its %d frames (finish_episode() was not "
            "called)", take.episode, take.frames)  # fmt: skip
        try:
            self.discard_current(0.0, stop=True)  # nobody waits on workers stopping
        except Exception as exc:
            log.warning("close(): cancelling the open episode failed: %s", exc)

    def status(self, status: PipelineStatus) -> PipelineStatus:
        """`status` with the background commits' figures."""
        return dataclasses.replace(status, commits_pending=self.pending,
                                   commit_failures=list(self.failures))  # fmt: skip

    def final_index(self, episode: int) -> int:
        """The index a take recorded as `episode` commits as, if every commit before it
        succeeds: one lower for each earlier one that failed."""
        return episode - sum(1 for lost in self._lost if lost < episode)

    def next_index(self, ended: Take | None = None) -> int:
        """The next take's index: past every take committed or committing (`ended`: the take
        that just ended, committed in the caller's thread or discarded)."""
        if ended is not None and ended.state is COMMITTED:
            self.issued = max(self.issued, ended.episode + 1)
        return self.issued

    def stop(self) -> None:
        """End the thread (close(): after wait_all, or once the session gave up waiting)."""
        with self._changed:
            thread, self._thread = self._thread, None
            self._queue.append(None)
            self._changed.notify_all()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        priority.leave_realtime()  # not the control loop's real-time policy
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue)
                item = self._queue.popleft()
            if item is None:
                return
            self._commit(*item)

    def _commit(self, take: Take, handle: FinishHandle, started: float) -> None:
        try:
            result = complete(take, self._session, self._dataset, started, alone=False)
        except BaseException as exc:
            message = (f"episode {take.episode} ({take.frames} frames) could not be committed "
                       f"and is discarded: {exc}")  # fmt: skip
            log.error("background finish: %s", message)
            self.failures.append(message)
            self._lost.append(take.episode)
            outcome = (handle._future.set_exception, exc)
        else:
            outcome = (handle._future.set_result, result)
        with self._session.lock:
            self._session.live.finishing.remove(take)
        outcome[0](outcome[1])
        with self._changed:
            self._busy -= 1
            self._changed.notify_all()
