"""The shared stats tally: commits add up per take, a new take starts from zero, and a reader
never sees a frame half counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from shmpipe.ipc.histogram_store import RGB_HISTOGRAM, StatsStore
from tests.helpers.paths import REPO
from tests.helpers.processes import stop_process

DEPTH_HISTOGRAM = (1, 4096)


@pytest.fixture
def store(shm_name):
    s = StatsStore.create(shm_name("stats"), 2)
    yield s
    s.close()
    s.unlink()


def histogram(seed: int, shape=RGB_HISTOGRAM) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, shape, dtype=np.int64)


def test_a_new_store_has_no_take_and_counts_nothing(store):
    for camera in range(2):
        tally = store.tally(camera)
        assert (tally.take, tally.frames, tally.next_seq) == (-1, 0, 0)
        assert tally.histogram.shape == RGB_HISTOGRAM
        assert not tally.histogram.any()


def test_commits_of_one_take_add_up_per_camera(store):
    hists = [histogram(i) for i in range(5)]
    for seq, h in enumerate(hists):
        store.commit(0, 3, seq + 10, h)
    store.commit(1, 3, 0, hists[0])
    tally = store.tally(0)
    assert (tally.take, tally.frames, tally.next_seq) == (3, 5, 15)
    np.testing.assert_array_equal(tally.histogram, sum(hists))
    other = store.tally(1)
    assert (other.take, other.frames, other.next_seq) == (3, 1, 1)
    np.testing.assert_array_equal(other.histogram, hists[0])


def test_a_frame_of_another_take_starts_that_take_from_zero(store):
    store.commit(0, 1, 0, histogram(1))
    store.commit(0, 1, 1, histogram(2))
    store.commit(0, 2, 2, histogram(3))
    tally = store.tally(0)
    assert (tally.take, tally.frames, tally.next_seq) == (2, 1, 3)
    np.testing.assert_array_equal(tally.histogram, histogram(3))


def test_a_tally_is_a_copy_that_later_commits_leave_alone(store):
    store.commit(0, 1, 0, histogram(1))
    before = store.tally(0)
    store.commit(0, 1, 1, histogram(2))
    store.commit(0, 1, 2, histogram(3))
    np.testing.assert_array_equal(before.histogram, histogram(1))
    assert before.frames == 1


def test_an_attached_store_sees_the_committed_tallies(store):
    store.commit(1, 4, 6, histogram(5))
    other = StatsStore.attach(store.name, 2)
    try:
        tally = other.tally(1)
        assert (tally.take, tally.frames, tally.next_seq) == (4, 1, 7)
        np.testing.assert_array_equal(tally.histogram, histogram(5))
        other.commit(1, 4, 7, histogram(6))
    finally:
        other.close()
    assert store.tally(1).frames == 2


def test_rgb_and_depth_cameras_keep_their_own_histogram_shapes(shm_name):
    shapes = [RGB_HISTOGRAM, DEPTH_HISTOGRAM, RGB_HISTOGRAM]
    assert StatsStore.size_for(3, shapes) > StatsStore.size_for(3)
    store = StatsStore.create(shm_name("stats"), 3, shapes)
    try:
        depth = histogram(7, DEPTH_HISTOGRAM)
        store.commit(1, 1, 0, depth)
        store.commit(1, 1, 1, depth)
        store.commit(2, 1, 0, histogram(8))
        assert [store.tally(c).histogram.shape for c in range(3)] == shapes
        np.testing.assert_array_equal(store.tally(1).histogram, 2 * depth)
        np.testing.assert_array_equal(store.tally(2).histogram, histogram(8))
        assert not store.tally(0).histogram.any()
    finally:
        store.close()
        store.unlink()


# Commits, in a tight loop, one frame of ones per bin: a whole tally has histogram == frames
# everywhere and next_seq == frames.
COMMITTER = """
import sys
import numpy as np
from shmpipe.ipc.histogram_store import StatsStore

store = StatsStore.attach(sys.argv[1], 1)
ones = np.ones((3, 256), np.int64)
print("committing", flush=True)
seq = 0
while seq < 50_000_000:
    store.commit(0, 1, seq, ones)
    seq += 1
"""


def whole(tally) -> bool:
    return bool(np.all(tally.histogram == tally.frames)) and tally.next_seq == tally.frames


def start_committer(name: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", COMMITTER, name], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout.readline().strip() == "committing"
    return child


def test_a_committer_killed_mid_commit_leaves_a_whole_tally(shm_name):
    """What a restarted stats worker relies on: the tally it resumes from counts each frame
    fully or not at all, wherever the old worker died."""
    store = StatsStore.create(shm_name("stats"), 1)
    try:
        for delay in (0.01, 0.05, 0.13):
            child = start_committer(store.name)
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
            stop_process(child)
            tally = store.tally(0)
            assert tally.frames > 0
            assert whole(tally), (
                f"torn tally after SIGKILL: frames {tally.frames}, next_seq {tally.next_seq}, "
                f"bins {np.unique(tally.histogram)[:5]}"
            )
            store.commit(0, 2, 0, np.zeros(RGB_HISTOGRAM, np.int64))  # the next run starts afresh
    finally:
        store.close()
        store.unlink()


def test_a_tally_read_beside_a_committing_process_is_never_half_a_commit(shm_name):
    store = StatsStore.create(shm_name("stats"), 1)
    child = start_committer(store.name)
    try:
        torn, deadline = None, time.monotonic() + 5
        while torn is None and time.monotonic() < deadline:
            tally = store.tally(0)
            if tally.frames and not whole(tally):
                torn = tally
        assert torn is None, f"read a torn tally: frames {torn.frames}, next_seq {torn.next_seq}"
    finally:
        stop_process(child)
        store.close()
        store.unlink()
