"""The take's state machine, without workers: every transition from every state, legal ones
reach their state and illegal ones raise UsageError naming both states; what a replaced worker
is told in each state; failures and camera counts as the take sees them (on a real ring)."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from shmpipe import messages
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.errors import DatasetError, UsageError, WorkerError
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.histogram_store import StatsStore
from shmpipe.ipc.names import new_token, object_name
from shmpipe.ipc.ring import RingWriter
from shmpipe.recorder.camera_feed import BacklogBudget, CameraFeed
from shmpipe.recorder.rolling import Roll, RollPlan
from shmpipe.recorder.take import Take, TakeState
from shmpipe.recorder.worker_handle import STATS_WORKER, encoder_for

S = TakeState
FRONT = encoder_for("front")
SHAPE = (4, 6, 3)


@pytest.fixture
def feed(tmp_path):
    owner, token = os.getpid(), new_token()
    ring = RingWriter.create(object_name(owner, token, "ring0"), 4, SHAPE)
    bell = Doorbell.create(object_name(owner, token, "bell0"))
    stats_bell = Doorbell.create(object_name(owner, token, "bellstats"))
    made = CameraFeed("front", ring, bell, stats_bell, BacklogBudget(1 << 20), tmp_path / "s")
    made.store = StatsStore.create(object_name(owner, token, "stats"), 1, snapshots=4)
    yield made
    made.close()
    for thing in (ring, bell, stats_bell, made.store):
        thing.close()
        thing.unlink()


def path_of(camera: str, episode: int) -> str:
    return f"/videos/{camera}/{episode}.mp4"


def failed(take: Take, code: int = 0) -> messages.WorkerFailed:
    return messages.WorkerFailed(take.number, "the codec broke", code)


def add_frame(take: Take, feed: CameraFeed) -> None:
    take.rows.ensure_room()
    take.add([feed], [feed.stage(np.zeros(SHAPE, np.uint8))], {}, 0, None)


def take_in(state: TakeState, feed: CameraFeed) -> Take:
    """A take brought to `state` by legal transitions (one frame added once open)."""
    take = Take(7, 3, EpisodeRows({}))
    if state is S.IDLE:
        return take
    take.open([feed], path_of, rolling(take, feed) if state is S.ROLLING else None)
    add_frame(take, feed)
    if state is S.FAILED:
        take.note(FRONT, failed(take))
    elif state in (S.FINISHING, S.COMMITTED):
        take.begin_finish([feed])
        if state is S.COMMITTED:
            take.committed()
    elif state is S.DISCARDED:
        take.discard()
    assert take.state is state
    return take


def rolling(take: Take, feed: CameraFeed) -> Roll:
    """A window of 4 frames in segments of 2 (rolling capture)."""
    return Roll(RollPlan(4, 2, 4), feed.store, take.number)


TRANSITIONS = {  # name -> (call, {from state: to state}); every other state is refused
    "open": (lambda t, f: t.open([f], path_of), {S.IDLE: S.OPEN}),
    "add": (lambda t, f: add_frame(t, f), {S.OPEN: S.OPEN, S.ROLLING: S.ROLLING}),
    "begin_finish": (lambda t, f: t.begin_finish([f]), {S.OPEN: S.FINISHING}),
    "committed": (lambda t, f: t.committed(), {S.FINISHING: S.COMMITTED}),
    "discard": (lambda t, f: t.discard(), {S.OPEN: S.DISCARDED, S.FAILED: S.DISCARDED,
                                           S.FINISHING: S.DISCARDED, S.ROLLING: S.DISCARDED}),
    "keep": (lambda t, f: t.keep(), {S.ROLLING: S.OPEN}),
}


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.name)
@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_every_transition_from_every_state(name, state, feed):
    take = take_in(state, feed)
    call, legal = TRANSITIONS[name]
    if state in legal:
        call(take, feed)
        assert take.state is legal[state]
    elif name in ("begin_finish", "keep") and state is S.FAILED:
        with pytest.raises(WorkerError, match="the codec broke"):  # its failure, not a misuse
            call(take, feed)
        assert take.state is S.FAILED
    elif name == "begin_finish" and state is S.ROLLING:
        with pytest.raises(UsageError, match="nothing is kept while rolling; call keep"):
            call(take, feed)
        assert take.state is S.ROLLING
    else:
        target = next(iter(legal.values())).name
        with pytest.raises(UsageError, match=rf"{name} goes from .* to {target}, but the take "
                                             rf"is {state.name}") as raised:  # fmt: skip
            call(take, feed)
        assert all(s.name in str(raised.value) for s in legal), "the allowed states are named"
        assert take.state is state, "a refused transition changed the state"


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.name)
def test_successor_only_after_a_final_state_and_numbers_the_next_take(state, feed):
    take = take_in(state, feed)
    if state in (S.COMMITTED, S.DISCARDED):
        after = take.successor(4)
        assert (after.number, after.episode, after.state, after.frames) == (8, 4, S.IDLE, 0)
    else:
        with pytest.raises(UsageError, match=f"COMMITTED/DISCARDED to IDLE, but the take is "
                                             f"{state.name}"):  # fmt: skip
            take.successor(4)


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.name)
def test_a_worker_failure_fails_only_a_take_the_workers_know(state, feed):
    take = take_in(state, feed)
    take.note(STATS_WORKER, failed(take))
    take.note(FRONT, messages.WorkerFailed(take.number + 1, "another take's"))
    take.note(FRONT, messages.EpisodeDone(take.number, 1))
    live = state in (S.OPEN, S.FAILED, S.FINISHING, S.ROLLING)
    assert take.state is (S.FAILED if live else state)
    assert take.message_of(STATS_WORKER) == ("the codec broke" if live else "")


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.name)
def test_a_replaced_worker_is_told_what_it_knew_of_the_take(state, feed):
    take = take_in(state, feed)
    start = messages.StartEpisode(7, path_of("front", 3))
    rolls = messages.StartEpisode(7, path_of("front", 3), roll_frames=4, segment_frames=2)
    expected = {S.OPEN: [start], S.FAILED: [start], S.ROLLING: [rolls],
                S.FINISHING: [start, messages.FinishEpisode(7, 1)]}.get(state, [])  # fmt: skip
    assert take.replay(FRONT) == expected
    stats = [m for m in expected if isinstance(m, messages.FinishEpisode)]
    assert take.replay(STATS_WORKER) == stats, "the stats worker has no StartEpisode"
    assert take.restarts == (2 if expected else 0)


def test_the_start_message_carries_the_take_number_from_the_first(feed):
    take = Take(5, 2, EpisodeRows({}))
    assert take.open([feed], path_of) == {FRONT: messages.StartEpisode(5, path_of("front", 2))}


def test_a_failed_take_refuses_frames_with_its_failure_and_disk_errors_are_dataset_errors(feed):
    take = take_in(S.OPEN, feed)
    take.note(FRONT, failed(take, errno.ENOSPC))
    take.note(FRONT, failed(take))  # only the first failure of a worker counts
    refused = take.refused_frame()
    assert isinstance(refused, DatasetError)
    assert "encoder worker for camera 'front' failed: the codec broke" in str(refused)
    assert "frame was not added" in str(refused) and "cancel_episode()" in str(refused)


def test_finishing_refuses_cameras_that_do_not_hold_one_frame_per_row(feed):
    take = take_in(S.OPEN, feed)
    feed.commit(feed.stage(np.zeros(SHAPE, np.uint8)), take.number, 1)  # no row for it
    with pytest.raises(WorkerError, match=r"has 1 rows but camera frames \{'front': 2\}"):
        take.begin_finish([feed])
    assert take.state is S.OPEN


def test_counts_are_the_takes_own_not_the_feeds_since_start(feed):
    first = take_in(S.OPEN, feed)
    for _ in range(5):  # the ring holds 4: the fifth waits in the backlog
        add_frame(first, feed)
    assert (first.counts.frames([feed]), first.counts.overflowed(feed)) == ({"front": 6}, 2)
    first.discard()
    feed.clear()
    second = first.successor(3)
    assert (second.counts.overflowed(feed), second.counts.spilled(feed), second.frames) == (0, 0, 0)
    second.open([feed], path_of)
    assert second.counts.frames([feed]) == {"front": 0}
    assert feed.backlogged == 2, "the feed counts since start"


def test_a_rolling_take_keeps_its_window_rounded_to_a_segment_and_tells_it_again(feed):
    take = Take(7, 3, EpisodeRows({"a": (1,)}))
    take.open([feed], path_of, rolling(take, feed))
    for k in range(9):  # window 4, segments 2: rows before the window's segment are dropped
        take.make_room()
        take.add([feed], [feed.stage(np.zeros(SHAPE, np.uint8))], {"a": [k]}, 0, None)
        feed.clear()  # the ring holds 4; the backlog is not what this test is about
    assert take.first_frame == 4 and take.rows.values("a")[:, 0].tolist() == [4, 5, 6, 7, 8]
    told = take.keep()  # at 9 frames the window starts at frame 5, in the segment from 4
    assert told[FRONT].kept_from == 4 and take.state is S.OPEN
    assert (take.first_frame, take.frames) == (4, 5)
    assert take.replay(FRONT) == [told[FRONT]], "a replaced encoder learns where it starts"
