"""How a take ends, in order: finished (the workers told, the commit steps, the result) or
discarded (the workers told, the files deleted).

Each step calls one module and returns before the next (the walk is in shmpipe.recorder.take's
docstring): the dataset's commit steps are in `finish` alone, each taken once what it depends on
is final: the data file once the rows are (FinishEpisode sent), the stats and metadata once the
stats worker is done, the videos' early sync next, and only what depends on the finished videos
(their sync and meta/info.json, the commit point) after every encoder is done. While it waits
for replies it feeds backlogged frames into the rings.

`finish` is `begin` (the workers told, in the thread that adds frames: before the next take's
first frame) then `complete` (the commit steps). finish_episode(wait=False) runs `complete` on the
committer's thread (shmpipe.recorder.committer) while the next take records: it then holds the
session lock only while it feeds frames and reads replies, and a failure discards only the files
of its own episode.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import msgspec

from shmpipe import messages
from shmpipe.dataset import layout
from shmpipe.dataset.writer import CommittedEpisode, DatasetWriter
from shmpipe.errors import WorkerError
from shmpipe.recorder.results import EpisodeResult, VideoSpan
from shmpipe.recorder.session import Session
from shmpipe.recorder.supervisor import Supervisor
from shmpipe.recorder.take import FAILED, Take
from shmpipe.recorder.worker_handle import STATS_WORKER, WorkerRole, encoder_for

MAX_RESTARTS_PER_WAIT = 5
CANCEL_WAIT_S = 0.5  # for workers to confirm a cancel (they answer within one frame)


def finish(take: Take, session: Session, dataset: DatasetWriter) -> EpisodeResult:
    """Commit the OPEN take's episode (its videos, stats and rows durable on return). If
    anything fails the take is discarded and the error raised."""
    t0 = time.perf_counter()
    begin(take, session, dataset)
    return complete(take, session, dataset, t0)


def begin(take: Take, session: Session, dataset: DatasetWriter, alone: bool = True) -> None:
    """OPEN -> FINISHING: every worker told how many frames the take has. In the thread that
    adds frames, before the next take's first frame: workers rely on that order (the stats
    worker keeps a camera at the next take's first frame until the take is whole). If it fails
    the take is discarded and the error raised; `alone`: no other take is live."""
    supervisor, feeds = session.supervisor, list(session.feeds.values())
    try:
        with session.lock:
            supervisor.supervise(session.live, force=True)  # a failure noted now fails it
            supervisor.broadcast(take.begin_finish(feeds), session.live)
    except BaseException:
        discard(take, session, dataset, alone=alone, files=alone)
        raise


def complete(take: Take, session: Session, dataset: DatasetWriter, started: float,
             alone: bool = True) -> EpisodeResult:  # fmt: skip
    """The commit steps of the FINISHING take, as its workers' replies come; in the caller's
    thread (finish) or the committer's (`alone` False: later takes are live meanwhile). If
    anything fails the take is discarded (only its own files) and the error raised."""
    supervisor = session.supervisor
    index = dataset.next_episode_index  # take.episode, unless an earlier commit failed
    try:
        with session.lock:
            session.drain_all()
        # the dataset's commit steps: nothing else in the recorder calls them
        commit = dataset.stage_episode(index, take.rows)  # the data file
        waiting, done = set(supervisor.handles), {}
        await_replies(take, supervisor, messages.EpisodeDone, waiting, done, session,
                      until=STATS_WORKER)  # fmt: skip
        commit.write_meta(take.histograms(session.histograms(done[STATS_WORKER])))
        commit.sync_early()
        await_replies(take, supervisor, messages.EpisodeDone, waiting, done, session)
        waited = time.perf_counter() - started
        if index != take.episode:  # its videos were named for the index it was opened with
            _renumber(dataset.root, done, index)
        committed = dataset.commit_staged(commit)  # meta/info.json: the commit point
        take.committed()
    except BaseException:
        discard(take, session, dataset, alone=alone, numbers=(index, take.episode))
        raise
    return _result(take, session, committed, done, waited, started)


def discard(take: Take, session: Session, dataset: DatasetWriter, wait_s: float = CANCEL_WAIT_S,
            stop: bool = False, alone: bool = True, files: bool = True,
            numbers: tuple[int, ...] = ()) -> None:  # fmt: skip
    """Every worker drops the take (their answers awaited at most `wait_s`; with `stop` they
    are then stopped), and its files are deleted. Messages are handled in order, so a worker
    that answers later still skips the take's frames and deletes its files before it starts
    the next take; a worker replaced meanwhile never heard of the take (it skips its frames).
    `alone` (no other take live): the dataset removes every unfinished file and the backlog
    is dropped. Else only the files of episode `numbers` go (a commit that failed in the
    background), and the take's backlogged frames flow on, skipped by the workers; with
    neither (a cancel while commits are pending) the workers delete their own files."""
    cancel = take.discard()
    supervisor = session.supervisor
    try:
        with session.lock:
            supervisor.broadcast(cancel, session.live)
        if wait_s > 0:
            wait_s = min(wait_s, supervisor.watchdog.stall_timeout_s)
            await_replies(take, supervisor, messages.EpisodeCancelled, set(supervisor.handles),
                          {}, session, give_up_s=wait_s)  # fmt: skip
        if stop:
            with session.lock:
                supervisor.stop_all()  # before the files go: no worker writes after
    finally:
        if alone and files:
            # whatever a worker killed meanwhile left of the take (its successor never heard of it)
            dataset.discard_episode(take.episode)
            for feed in session.feeds.values():
                feed.clear()
        elif numbers:
            dataset.discard_files(numbers)
        else:  # the loop's: its loans end (the backlog flows on)
            for feed in session.feeds.values():
                feed.end_loan()


def await_replies(take: Take, supervisor: Supervisor, kind: type, waiting: set[WorkerRole],
                  done: dict[WorkerRole, msgspec.Struct], session: Session | None = None,
                  give_up_s: float | None = None, until: WorkerRole | None = None) -> None:
    """Move each of `waiting` into `done` (role -> its reply `kind` to the take) as replies
    come, until none waits, `until` is done, or `give_up_s` passed; `session`'s backlogged
    frames go into the rings meanwhile, under its lock (never held while waiting). A replaced
    worker is awaited again (it replays the take), or for a cancel not at all (it never heard
    of the take); a worker failure of the take raises it, as does a worker replaced too often."""
    restarts = dict(supervisor.restarts)
    deadline = None if give_up_s is None else time.monotonic() + give_up_s
    cancelling = kind is messages.EpisodeCancelled
    lock = session.lock if session is not None else contextlib.nullcontext()
    takes = session.live if session is not None else take
    while waiting and until not in done:
        with lock:
            if session is not None:
                if session.closing:
                    raise WorkerError(f"episode {take.episode}: the pipeline closed first")
                session.drain_all()
            supervisor.supervise(takes)
            for role in [r for r in waiting if supervisor.restarts.get(r) != restarts.get(r)]:
                if cancelling:
                    waiting.discard(role)  # the successor never heard of the take
                elif supervisor.restarts[role] - restarts.get(role, 0) > MAX_RESTARTS_PER_WAIT:
                    raise WorkerError(f"{role} keeps failing; the episode is lost")
            for role, reply in supervisor.replies(waiting, takes, 0, take.number):
                if isinstance(reply, kind):
                    done[role] = reply
                    waiting.discard(role)
            if take.state is FAILED and not cancelling:
                raise take.error()
        if deadline is not None and time.monotonic() > deadline:
            break
        if waiting and until not in done:
            supervisor.wait_for_replies(waiting, 0.005)


def _renumber(root: Path, done: dict, index: int) -> None:
    """Move each camera's finished video to the staged name of episode `index`."""
    for role, reply in done.items():
        if role.kind == "encoder":
            target = layout.staged_video_path(root, role.camera, index)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(reply.path, target)


def _result(take: Take, session: Session, committed: CommittedEpisode, done: dict,
            waited: float, started: float) -> EpisodeResult:  # fmt: skip
    """What finish_episode returns; `done` has every encoder's EpisodeDone."""
    n, fps = committed.length, next(iter(session.videos.values())).fps
    done = {name: done[encoder_for(name)] for name in session.feeds}
    steps = {k: committed.timings[k] for k in ("data", "stats", "meta", "commit")}
    timings = {"video_flush": waited,
               "encoder_flush": max(d.flush_seconds for d in done.values()), **steps}  # fmt: skip
    timings["total"] = time.perf_counter() - started
    timings["after_flush"] = timings["total"] - waited
    feeds = session.feeds
    return EpisodeResult(
        episode_index=committed.episode_index,
        num_frames=n,
        videos={name: VideoSpan(str(committed.videos[name]), 0.0, n / fps) for name in done},
        data=committed.data_path,
        stats=committed.stats,
        timings=timings,
        ring_high_water={name: feed.ring.high_water for name, feed in feeds.items()},
        overflow_count={name: take.counts.overflowed(feed) for name, feed in feeds.items()},
        tasks=committed.tasks,
        worker_restarts=take.restarts,
    )
