"""The preview's peeker: it copies the newest frame, holds no slot, and drops a copy the writer
may have refilled while it was copying."""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe.ipc.ring import RingPeeker
from tests.ipc.test_ring import Rig, pattern

CAPACITY = 4


@pytest.fixture
def rig(shm_name):
    rig = Rig(shm_name("ring0"), CAPACITY)
    rig.peeker = RingPeeker.attach(rig.writer.name)
    yield rig
    rig.peeker.close()
    rig.close()


def keep_up(rig, seq_end: int) -> None:
    """Both real readers are done with every frame < seq_end."""
    rig.encoder.release_through(seq_end)
    rig.stats.release_through(seq_end)


def test_peeker_copies_the_newest_frame_and_skips_the_others(rig):
    assert rig.peeker.copy_newest(0, np.copy) is None  # nothing published yet
    for seq in range(3):
        assert rig.put(seq, take=5)
    slot = rig.peeker.copy_newest(0, np.copy)
    assert (slot.seq, slot.take, slot.frame_index) == (2, 5, 2)
    np.testing.assert_array_equal(slot.frame, pattern(2))
    assert not np.shares_memory(slot.frame, rig.writer.claim())
    assert rig.peeker.copy_newest(3, np.copy) is None  # nothing newer than what it showed


def test_peeker_holds_no_slot_and_writes_no_counter(rig):
    for lap in range(3):
        for seq in range(lap * CAPACITY, (lap + 1) * CAPACITY):
            assert rig.put(seq), f"frame {seq}: the writer waited though the readers kept up"
            counters = rig.writer._ctrl.tobytes()
            assert rig.peeker.copy_newest(0, np.copy).seq == seq
            assert rig.writer._ctrl.tobytes() == counters, "the peeker wrote a ring counter"
        keep_up(rig, (lap + 1) * CAPACITY)
    assert rig.writer.slots_used() == 0


def test_a_copy_the_writer_may_have_refilled_is_dropped(rig):
    assert rig.put(0)
    keep_up(rig, 1)

    def copy_while_the_writer_laps(frame):
        out = frame.copy()
        for seq in range(1, CAPACITY + 1):  # frame CAPACITY reuses frame 0's slot
            assert rig.put(seq)
            keep_up(rig, seq + 1)
        return out

    assert rig.peeker.copy_newest(0, copy_while_the_writer_laps) is None


def test_a_copy_is_dropped_once_the_writer_may_claim_its_slot(rig):
    """The slot of frame s may be claimed (and a loan filled) once write_seq is s + capacity,
    before that frame is published: a copy after which write_seq got there is not trusted."""
    assert rig.put(0)
    keep_up(rig, 1)

    def copy_while_publishing(count):
        def copy(frame):
            for seq in range(1, 1 + count):
                assert rig.put(seq)
                keep_up(rig, seq + 1)
            return frame.copy()

        return copy

    slot = rig.peeker.copy_newest(0, copy_while_publishing(CAPACITY - 2))
    assert slot is not None and slot.seq == 0
    np.testing.assert_array_equal(slot.frame, pattern(0))
    assert rig.peeker.copy_newest(CAPACITY - 1, copy_while_publishing(CAPACITY - 1)) is None
