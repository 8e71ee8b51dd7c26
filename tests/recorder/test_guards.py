"""CallGuard (one call at a time, in the owner process, while started) and SignalsDeferred
(signals raised inside the block reach their handlers after it, in order)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from shmpipe.errors import UsageError
from shmpipe.recorder.guards import _CATCHABLE, CallGuard, SignalsDeferred

HELD = (signal.SIGALRM, signal.SIGTERM, signal.SIGINT)


@pytest.fixture
def started():
    guard = CallGuard()
    guard.started()
    return guard


def test_calls_before_start_and_after_close_are_refused():
    guard = CallGuard()
    with pytest.raises(UsageError, match=r"Pipeline.add_frame\(\): call start\(\) first"):
        with guard.call("add_frame"):
            pass
    guard.started()
    with guard.call("add_frame"):
        pass
    guard.closed()
    with pytest.raises(UsageError, match=r"Pipeline.loan\(\): the pipeline is closed"):
        with guard.call("loan"):
            pass


def test_a_second_thread_is_refused_while_one_is_inside(started):
    inside, leave = threading.Event(), threading.Event()

    def first() -> None:
        with started.call("add_frame"):
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(10)
        with pytest.raises(UsageError, match="another call is running in another thread"):
            with started.call("add_frame"):
                pass
    finally:
        leave.set()
        thread.join(10)
    with started.call("add_frame"):  # free again once the first call left
        pass


def test_the_same_thread_may_call_again_after_an_interrupted_call(started):
    with pytest.raises(KeyboardInterrupt):
        with started.call("add_frame"):
            raise KeyboardInterrupt
    with started.call("add_frame"):
        with started.call("status"):  # a stale mark of our own thread does not lock us out
            pass


def test_a_forked_child_is_refused_and_the_parent_is_not(started):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what the guard said, and leave at once
        try:
            with started.call("add_frame"):
                verdict = b"allowed"
        except UsageError as exc:
            verdict = b"refused" if "forked child" in str(exc) else str(exc).encode()
        except BaseException:
            verdict = b"crashed"
        os.write(write, verdict)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        verdict = pipe.read()
    os.waitpid(pid, 0)
    assert verdict == b"refused"
    assert started.in_owner()
    with started.call("add_frame"):
        pass


@pytest.fixture
def handlers():
    """Recording handlers for HELD; every catchable signal's handler restored afterwards."""
    saved = {s: signal.getsignal(s) for s in _CATCHABLE}
    delivered: list[int] = []
    for signum in HELD:
        signal.signal(signum, lambda s, frame: delivered.append(s))
    yield delivered
    for signum, handler in saved.items():
        if handler is not None:
            signal.signal(signum, handler)


def test_signals_raised_inside_the_block_are_delivered_after_it_in_order(handlers):
    originals = {s: signal.getsignal(s) for s in HELD}
    with SignalsDeferred():
        for signum in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT):
            signal.raise_signal(signum)
        sum(range(1000))  # bytecodes at which a handler would run
        assert handlers == [], "a handler ran inside the block"
    assert handlers == [signal.SIGTERM, signal.SIGALRM, signal.SIGINT]
    assert {s: signal.getsignal(s) for s in HELD} == originals


def test_a_signal_raised_twice_inside_the_block_is_delivered_once(handlers):
    with SignalsDeferred():
        signal.raise_signal(signal.SIGALRM)
        signal.raise_signal(signal.SIGALRM)
    assert handlers == [signal.SIGALRM]


def test_a_block_without_signals_delivers_nothing_and_restores_the_handlers(handlers):
    originals = {s: signal.getsignal(s) for s in HELD}
    with SignalsDeferred():
        pass
    assert handlers == []
    assert {s: signal.getsignal(s) for s in HELD} == originals


def test_ctrl_c_inside_the_block_raises_keyboard_interrupt_only_after_it(handlers):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    finished = False
    with pytest.raises(KeyboardInterrupt):
        with SignalsDeferred():
            signal.raise_signal(signal.SIGINT)
            finished = True
    assert finished, "KeyboardInterrupt cut the block short"


def test_a_handler_left_by_an_interrupted_block_is_replaced_by_the_original(handlers):
    original = signal.getsignal(signal.SIGTERM)
    interrupted = SignalsDeferred().__enter__()  # its __exit__ never ran
    assert signal.getsignal(signal.SIGTERM) != original
    with SignalsDeferred():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == original, "the stale holder stayed installed"
    assert handlers == [signal.SIGTERM], "the signal went to the stale holder, not the handler"
    assert interrupted._pending == []


def test_outside_the_main_thread_the_block_changes_no_handler(handlers):
    seen = {}

    def run() -> None:
        with SignalsDeferred():
            seen.update({s: signal.getsignal(s) for s in HELD})

    originals = {s: signal.getsignal(s) for s in HELD}
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert seen == originals
