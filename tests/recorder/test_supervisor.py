"""The Supervisor with real workers on a real ring: a killed or stalled worker is replaced
under the same role, what the take asks is replayed to it, and its answer is awaited
(shmpipe.recorder.finish.await_replies)."""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack

import msgspec
import pytest

from shmpipe import messages
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.errors import WorkerError
from shmpipe.ipc import names
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.histogram_store import StatsStore
from shmpipe.ipc.ring import ENCODER_READER, STATS_READER, RingWriter
from shmpipe.recorder.camera_feed import BacklogBudget, CameraFeed
from shmpipe.recorder.finish import await_replies
from shmpipe.recorder.supervisor import Supervisor
from shmpipe.recorder.take import Take
from shmpipe.recorder.worker_handle import STATS_WORKER, encoder_for
from tests.helpers.frames import value_of
from tests.helpers.small_video import SIZE, SMALL_AV1, assert_flat_frames, flat

FRONT = encoder_for("front")


class Workers:
    """What Session makes for one camera, by hand: owner lock, ring, doorbells, stats store, an
    encoder worker and the stats worker under a Supervisor. `heartbeat` None: the rings' own."""

    def __init__(self, stack: ExitStack, backend: str, heartbeat=None, stall_s: float = 5.0,
                 spill=None):  # fmt: skip
        owner = messages.Owner(os.getpid(), names.new_token())
        stack.callback(names.OwnerLock(owner.pid, owner.token).release)

        def made(thing):  # ours: closed, then unlinked
            stack.callback(thing.unlink)
            stack.callback(thing.close)
            return thing

        def name(what: str) -> str:
            return names.object_name(owner.pid, owner.token, what)

        self.ring = made(RingWriter.create(name("ring0"), 64, (SIZE, SIZE, 3)))
        self.bell = made(Doorbell.create(name("bell0")))
        self.stats_bell = made(Doorbell.create(name("bellstats")))
        store = made(StatsStore.create(name("stats"), 1))
        self.sup = Supervisor(backend, heartbeat or self._beat, self.wake, stall_s)
        stack.callback(self.sup.close)
        # a worker process moves all its threads; a worker thread only its own and the codec's
        video = msgspec.structs.replace(SMALL_AV1, scope=backend)
        ring = self.ring.name
        encoder = messages.EncoderSpec("front", ring, self.bell.name, owner, video)
        stats = messages.StatsSpec(["front"], [ring], self.stats_bell.name, store.name, owner, 0)
        self.sup.start(FRONT, encoder)
        self.sup.start(STATS_WORKER, stats)
        self.sup.await_ready()
        self.feed = CameraFeed("front", self.ring, self.bell, self.stats_bell,
                               BacklogBudget(0), spill or f"/nonexistent/{owner.token}")
        stack.callback(self.feed.close)  # its backlog; the ring and doorbells are ours
        self.frames = 0

    def _beat(self, role) -> tuple[int, bool]:
        if role == STATS_WORKER:
            return self.ring.heartbeat(STATS_READER)[0], False
        return self.ring.heartbeat(ENCODER_READER)

    def wake(self) -> None:
        self.bell.ring()
        self.stats_bell.ring()

    def publish(self, take: Take, count: int) -> None:
        """The next `count` frames of the take (flat at value_of(i)), each into a free slot
        and a row, as add_frame adds them."""
        for _ in range(count):
            deadline = time.monotonic() + 20
            while self.ring.claim() is None:
                assert time.monotonic() < deadline, "the workers stopped releasing slots"
                self.sup.supervise(take)
                time.sleep(0.002)
            staged = self.feed.stage(flat(value_of(self.frames)))
            take.rows.ensure_room()
            take.add([self.feed], [staged], {}, 0, None)
            self.frames += 1
        self.wake()

    def finish(self, take: Take, meanwhile=lambda: None) -> dict:
        """Tell every worker the take is finished, call `meanwhile`, await every EpisodeDone."""
        self.sup.supervise(take, force=True)
        self.sup.broadcast(take.begin_finish([self.feed]), take)
        meanwhile()
        waiting, done = set(self.sup.handles), {}
        await_replies(take, self.sup, messages.EpisodeDone, waiting, done)
        take.committed()
        return done

    def pid(self, role) -> int:
        return self.sup.handles[role].process.pid


def open_take(workers: Workers, path, number: int = 1) -> Take:
    take = Take(number, 0, EpisodeRows({}))
    for role, message in take.open([workers.feed], lambda camera, episode: path).items():
        workers.sup.send(role, message, take)
    return take


def kill(workers: Workers, role) -> int:
    """SIGKILL the worker and wait until it is gone (its codec threads too); its pid."""
    process = workers.sup.handles[role].process
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    return process.pid


def test_a_killed_encoder_is_replaced_under_its_role_and_the_take_replayed(tmp_path):
    with ExitStack() as stack:
        workers = Workers(stack, "process")
        roles = set(workers.sup.handles)
        take = open_take(workers, tmp_path / "front.mp4")
        workers.publish(take, 30)
        old = kill(workers, FRONT)
        workers.sup.supervise(take, force=True)
        assert workers.sup.restarts == {FRONT: 1}
        assert set(workers.sup.handles) == roles == {FRONT, STATS_WORKER}
        assert workers.pid(FRONT) != old
        workers.publish(take, 30)
        done = workers.finish(take)
        assert take.restarts == 1
    assert set(done) == {FRONT, STATS_WORKER}
    assert done[FRONT].num_frames == 60 and done[STATS_WORKER].num_frames == 60
    assert done[FRONT].path == str(tmp_path / "front.mp4")
    assert_flat_frames(done[FRONT].path, 60)
    assert not list(tmp_path.glob("*.partial*")), "segments left behind"


def test_an_encoder_killed_during_finish_is_replaced_and_its_answer_awaited(tmp_path):
    with ExitStack() as stack:
        workers = Workers(stack, "process")
        take = open_take(workers, tmp_path / "front.mp4")
        workers.publish(take, 39)
        workers.publish(take, 1)
        # stopped before it is told to finish, killed after: only its successor can answer
        os.kill(workers.pid(FRONT), signal.SIGSTOP)
        done = workers.finish(take, meanwhile=lambda: kill(workers, FRONT))
        assert workers.sup.restarts == {FRONT: 1}
    assert done[FRONT].num_frames == 40
    assert_flat_frames(done[FRONT].path, 40)


def test_a_stalled_worker_process_is_killed_and_replaced():
    with ExitStack() as stack:
        workers = Workers(stack, "process", heartbeat=lambda role: (0, False), stall_s=0.3)
        old = {role: workers.pid(role) for role in (FRONT, STATS_WORKER)}
        idle = Take(1, 0, EpisodeRows({}))
        workers.sup.supervise(idle, force=True)  # the first look sees the beat: the clock starts
        time.sleep(0.8)  # the beat never moves: both look stalled
        workers.sup.supervise(idle, force=True)
        assert workers.sup.restarts == {FRONT: 1, STATS_WORKER: 1}
        for role, pid in old.items():
            deadline = time.monotonic() + 3  # kills are reaped on a background thread
            while names.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not names.pid_alive(pid), f"the stalled {role} was not killed"
            assert workers.pid(role) != pid


def test_a_stalled_worker_thread_fails_the_call_instead_of_hanging():
    with ExitStack() as stack:
        workers = Workers(stack, "thread", heartbeat=lambda role: (0, False), stall_s=0.3)
        idle = Take(1, 0, EpisodeRows({}))
        workers.sup.supervise(idle, force=True)  # the first look sees the beat: the clock starts
        time.sleep(0.8)
        with pytest.raises(WorkerError, match="a thread cannot be replaced"):
            workers.sup.supervise(idle, force=True)
        assert workers.sup.restarts == {}


def test_cancel_is_answered_by_every_worker_and_frees_the_take(tmp_path):
    with ExitStack() as stack:
        workers = Workers(stack, "thread")
        take = open_take(workers, tmp_path / "front.mp4")
        workers.publish(take, 10)
        workers.sup.broadcast(take.discard(), take)
        waiting, cancelled = set(workers.sup.handles), {}
        await_replies(take, workers.sup, messages.EpisodeCancelled, waiting, cancelled,
                      give_up_s=5.0)  # fmt: skip
        assert set(cancelled) == {FRONT, STATS_WORKER}
        assert not list(tmp_path.glob("front.mp4*")), "the cancelled take left a file"
        workers.feed.clear()
        take = take.successor(0)
        assert take.number == 2
        take = open_take(workers, tmp_path / "front.mp4", take.number)
        workers.frames = 0  # the episode index is reused, the take is not
        workers.publish(take, 5)
        done = workers.finish(take)
    assert done[FRONT].num_frames == 5 and done[STATS_WORKER].num_frames == 5
    assert_flat_frames(done[FRONT].path, 5)
