"""A commit's burst of renames runs with its thread in SCHED_FIFO 1 where that is allowed, so no
normal thread (a reader globbing the dataset) takes the CPU between two renames; the thread's
own policy comes back after, and a thread already real-time is left as it was."""

from __future__ import annotations

import os
import threading

import pytest

from shmpipe.system import priority, realtime

needs_fifo = pytest.mark.skipif(not realtime.allowed(), reason="SCHED_FIFO is not permitted here")


def policy_of_this_thread() -> tuple[int, int]:
    return os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK, os.sched_getparam(0).sched_priority


@needs_fifo
def test_a_normal_thread_is_fifo_1_in_the_burst_and_normal_after():
    before = policy_of_this_thread()
    with priority.held_on_cpu():
        inside = policy_of_this_thread()
    assert inside == (os.SCHED_FIFO, 1)
    assert policy_of_this_thread() == before


@needs_fifo
def test_the_control_loop_at_fifo_10_is_not_lowered():
    saved = priority.raise_control_thread(10)
    try:
        with priority.held_on_cpu():
            assert policy_of_this_thread() == (os.SCHED_FIFO, 10)
        assert policy_of_this_thread() == (os.SCHED_FIFO, 10)
    finally:
        priority.restore_thread(saved)


def test_a_thread_that_may_not_is_left_normal():
    seen = {}

    def worker():
        realtime.forbid(whole_process=False)
        with priority.held_on_cpu():
            seen["inside"] = policy_of_this_thread()
        seen["after"] = policy_of_this_thread()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["inside"] == seen["after"] == (os.SCHED_OTHER, 0)
