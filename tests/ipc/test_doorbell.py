"""Doorbells: a ring wakes a sleeping waiter, and a signal only cuts a sleep short."""

from __future__ import annotations

import signal
import threading
import time

import posix_ipc
import pytest

from shmpipe.ipc.doorbell import Doorbell


@pytest.fixture
def bell(shm_name):
    b = Doorbell.create(shm_name("bell0"))
    yield b
    b.close()
    b.unlink()


def test_an_unrung_bell_waits_out_its_timeout(bell):
    start = time.monotonic()
    assert bell.wait(0.05) is False
    assert time.monotonic() - start >= 0.04


def test_rings_are_counted_one_wait_each(bell):
    bell.ring()
    bell.ring()
    assert bell.wait(0) and bell.wait(0)
    assert not bell.wait(0)


def test_a_ring_wakes_a_waiter_attached_by_name(bell):
    waiter = Doorbell.attach(bell.name)
    woke: list[tuple[bool, float]] = []

    def sleep() -> None:
        start = time.monotonic()
        woke.append((waiter.wait(10), time.monotonic() - start))

    thread = threading.Thread(target=sleep)
    thread.start()
    time.sleep(0.05)
    bell.ring()
    thread.join(5)
    waiter.close()
    assert woke and woke[0][0] is True
    assert woke[0][1] < 5, "the waiter slept through the ring"


def test_a_signal_with_a_python_handler_ends_the_wait_with_false(bell):
    """posix_ipc raises SignalError when a handler interrupts sem_timedwait; it used to kill
    sleeping workers."""
    seen = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: seen.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        start = time.monotonic()
        assert bell.wait(5) is False
        assert time.monotonic() - start < 4
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert seen == [signal.SIGALRM]
    bell.ring()
    assert bell.wait(1), "the bell works after an interrupted wait"


def test_closing_twice_and_closing_an_attached_bell_keep_the_owners(bell):
    other = Doorbell.attach(bell.name)
    other.close()
    other.close()
    bell.ring()
    assert bell.wait(0), "an attacher's close must not unlink the owner's bell"


def test_closing_the_creators_bell_leaves_its_name_until_it_unlinks(shm_name):
    bell = Doorbell.create(shm_name("bell1"))
    bell.close()
    other = Doorbell.attach(bell.name)  # close let go of it here; the name stays
    other.ring()
    assert other.wait(0)
    bell.unlink()
    bell.unlink()  # a name already gone is no error
    with pytest.raises(posix_ipc.ExistentialError):
        Doorbell.attach(bell.name)
    other.ring()
    assert other.wait(0), "an unlinked bell still works for those that opened it"
    other.close()
