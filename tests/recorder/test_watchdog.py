"""The supervisor's watchdog thread raises its flag for a worker whose channel has something or
whose heartbeat stands still, and not for one that beats; it stops at once when closed."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from shmpipe.recorder.watchdog import Watchdog

INTERVAL_S = 0.05


class Beats:
    """Heartbeats by worker: a worker's count moves while it is in `moving`."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.moving: set[str] = set()

    def __call__(self, worker: str) -> tuple[int, bool]:
        if worker in self.moving:
            self.counts[worker] = self.counts.get(worker, 0) + 1
        return self.counts.get(worker, 0), False


@pytest.fixture(params=[INTERVAL_S])
def rig(request):
    beats = Beats()
    pairs = {name: socket.socketpair() for name in ("a", "b")}
    dog = Watchdog(beats, request.param)
    dog.watch([(name, ours.fileno()) for name, (ours, _) in pairs.items()])
    yield dog, beats, pairs
    dog.close()
    for ours, theirs in pairs.values():
        ours.close()
        theirs.close()


def raised_within(dog: Watchdog, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if dog.attention:
            return True
        time.sleep(0.005)
    return False


def test_workers_that_beat_and_say_nothing_raise_nothing(rig):
    dog, beats, _ = rig
    beats.moving = {"a", "b"}
    assert not raised_within(dog, 10 * INTERVAL_S)


# a 10 s interval: the flag comes from poll(2) waking on the channel, not from a periodic look
@pytest.mark.parametrize("rig", [10.0], indirect=True)
def test_a_reply_on_a_channel_raises_the_flag_at_once(rig):
    dog, beats, pairs = rig
    beats.moving = {"a", "b"}
    pairs["b"][1].send(b"reply")
    assert raised_within(dog, 2.0), "the reply waited for the next periodic look"


@pytest.mark.parametrize("rig", [10.0], indirect=True)
def test_a_closed_channel_raises_the_flag_at_once(rig):
    dog, beats, pairs = rig
    beats.moving = {"a", "b"}
    pairs["a"][1].close()  # the worker died: its end of the channel is gone
    assert raised_within(dog, 2.0)


def test_a_beat_that_stands_still_raises_the_flag_and_again_after_it_was_lowered(rig):
    dog, beats, _ = rig
    beats.moving = {"a"}  # b is stopped
    assert raised_within(dog, 10 * INTERVAL_S)
    dog.attention = False  # the control thread looked
    assert raised_within(dog, 10 * INTERVAL_S), "a worker still stalled was forgotten"
    beats.moving = {"a", "b"}
    time.sleep(3 * INTERVAL_S)
    dog.attention = False
    assert not raised_within(dog, 10 * INTERVAL_S), "a worker beating again still counts"


def test_close_stops_the_thread_at_once():
    dog = Watchdog(Beats(), interval_s=10.0)
    t0 = time.monotonic()
    dog.close()
    assert time.monotonic() - t0 < 1.0
    assert not [t for t in threading.enumerate() if t.name == "shmpipe-watchdog"]
    dog.close()  # twice is harmless


class Flushing(Beats):
    """Beats whose `flushing` flag is set for the workers in `flushing`."""

    def __init__(self) -> None:
        super().__init__()
        self.flushing: set[str] = set()

    def __call__(self, worker: str) -> tuple[int, bool]:
        return super().__call__(worker)[0], worker in self.flushing


def test_stalled_and_overdue_are_judged_from_one_table_of_beats():
    """The supervisor asks the watchdog (stalled_s for status(), overdue to replace a worker):
    a beating worker is neither; one standing still is stalled after two intervals and overdue
    after the stall timeout, twelve times that while it says it flushes."""
    beats = Flushing()
    dog = Watchdog(beats, INTERVAL_S, stall_timeout_s=0.3)
    try:
        beats.moving = {"a"}
        beats.flushing = {"c"}
        for worker in ("a", "b", "c"):
            assert dog.stalled_s(worker) == 0.0  # the first look starts the clock
        time.sleep(0.45)
        assert dog.stalled_s("a") == 0.0 and dog.overdue("a") == 0.0
        assert dog.stalled_s("b") >= 0.45 and dog.overdue("b") >= 0.45
        assert dog.stalled_s("c") >= 0.45 and dog.overdue("c") == 0.0, "a flush may take 12x"
        ours, theirs = socket.socketpair()
        dog.watch([("b2", ours.fileno())])  # b replaced: its successor is judged afresh
        assert dog.stalled_s("b2") == 0.0
    finally:
        dog.close()
    ours.close()
    theirs.close()
