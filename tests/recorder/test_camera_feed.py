"""CameraFeed on a real ring: frames go to a slot, then to memory, then to the spill file as the
ring fills and the backlog budget runs out, and come out in commit order, byte for byte."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.names import new_token, object_name
from shmpipe.ipc.ring import ENCODER_READER, STATS_READER, RingReader, RingWriter
from shmpipe.recorder.camera_feed import BacklogBudget, CameraFeed, InMemory, InSlot, Spilled
from tests.helpers.frames import textured_frame

SHAPE = (8, 12, 3)
SLOTS = 4
FRAME_BYTES = 8 * 12 * 3


class FeedRig:
    """A feed on a 4-slot ring with both readers attached; `budget_frames` frames of memory
    (or a `budget` shared with other feeds)."""

    def __init__(self, spill_path, budget_frames: int = 2, budget=None) -> None:
        owner, token = os.getpid(), new_token()
        ring = RingWriter.create(object_name(owner, token, "ring0"), SLOTS, SHAPE)
        self.bell = Doorbell.create(object_name(owner, token, "bell0"))
        self.stats_bell = Doorbell.create(object_name(owner, token, "bellstats"))
        self.budget = budget or BacklogBudget(budget_frames * FRAME_BYTES)
        self.spill_path = spill_path
        self.feed = CameraFeed("front", ring, self.bell, self.stats_bell, self.budget, spill_path)
        self.readers = [RingReader.attach(ring.name, r) for r in (ENCODER_READER, STATS_READER)]
        self.next_read = 0

    def add(self, frame: np.ndarray, index: int, take: int = 1):
        """stage + commit `frame` as frame `index`; where it was staged."""
        staged = self.feed.stage(lambda out: np.copyto(out, frame))
        self.feed.commit(staged, take, index)
        return staged

    def read_all(self) -> list[tuple[int, int, np.ndarray]]:
        """(take, frame index, a copy of the frame) of every published frame not yet read,
        released by both readers."""
        out = []
        encoder, stats = self.readers
        while encoder.unread(self.next_read):
            slot = encoder.read(self.next_read)
            out.append((slot.take, slot.frame_index, slot.frame.copy()))
            del slot
            self.next_read += 1
        for reader in self.readers:
            reader.release_through(self.next_read)
        return out

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        self.feed.close()  # its spill file; the rig made the ring and doorbells: it ends them
        for thing in (self.feed.ring, self.bell, self.stats_bell):
            thing.close()
            thing.unlink()


@pytest.fixture
def rig(tmp_path):
    r = FeedRig(tmp_path / "spill" / "front.raw")
    yield r
    r.close()


FRAMES = [textured_frame(i, *SHAPE[:2], seed=3) for i in range(40)]


def test_stage_goes_to_slots_then_memory_then_the_spill_file(rig):
    places = [rig.add(FRAMES[i], i) for i in range(SLOTS + 4)]
    assert places[:SLOTS] == [InSlot()] * SLOTS
    assert [type(p) for p in places[SLOTS:]] == [InMemory, InMemory, Spilled, Spilled]
    assert [p.offset for p in places[SLOTS + 2 :]] == [0, FRAME_BYTES]
    assert rig.budget.used == 2 * FRAME_BYTES
    assert rig.feed.backlog_bytes() == 2 * FRAME_BYTES, "spilled frames hold no memory"
    assert (rig.feed.added(), rig.feed.backlogged, rig.feed.spilled) == (8, 4, 2)
    assert rig.spill_path.stat().st_size == 2 * FRAME_BYTES


def test_backlogged_frames_reach_the_reader_in_commit_order_byte_for_byte(rig):
    got = []
    for i in range(len(FRAMES)):
        rig.add(FRAMES[i], i, take=5)
        if i % 5 == 4:  # the encoder catches up on some frames only
            got += rig.read_all()
    while rig.feed.backlog:
        assert rig.feed.drain() > 0
        got += rig.read_all()
    got += rig.read_all()
    assert rig.feed.spilled > 0, "the test must go through the spill file"
    assert [(take, index) for take, index, _ in got] == [(5, i) for i in range(len(FRAMES))]
    for i, (_, _, frame) in enumerate(got):
        np.testing.assert_array_equal(frame, FRAMES[i], err_msg=f"frame {i}")
    assert rig.budget.used == 0


def test_a_freed_slot_goes_to_the_oldest_backlogged_frame_not_the_new_one(rig):
    for i in range(SLOTS + 2):
        rig.add(FRAMES[i], i)
    for reader in rig.readers:
        reader.release_through(1)  # one slot free
    staged = rig.add(FRAMES[6], 6)
    assert not isinstance(staged, InSlot), "frame 6 jumped ahead of the backlog"
    assert [w.frame_index for w in rig.feed.backlog] == [5, 6]
    assert rig.feed.ring.write_seq == SLOTS + 1  # frame 4 moved into the freed slot


def test_drain_moves_what_fits_and_wakes_only_sleeping_readers(rig):
    for i in range(SLOTS + 3):
        rig.add(FRAMES[i], i)
    assert rig.feed.drain() == 0, "nothing is free yet"
    rig.readers[0].set_asleep(True)
    for reader in rig.readers:
        reader.release_through(2)
    assert rig.feed.drain() == 2
    assert len(rig.feed.backlog) == 1
    assert rig.bell.wait(0), "the sleeping encoder was not rung"
    assert not rig.stats_bell.wait(0), "the awake stats reader was rung"


def test_clear_forgets_the_backlog_and_gives_back_its_budget(rig):
    for i in range(SLOTS + 3):
        rig.add(FRAMES[i], i)
    rig.feed.clear()
    assert not rig.feed.backlog
    assert rig.budget.used == 0 and rig.feed.backlog_bytes() == 0
    # the backlog's frames are no longer added; the counters since start keep counting
    assert (rig.feed.added(), rig.feed.backlogged, rig.feed.spilled) == (SLOTS, 3, 1)
    # the budget is there again: the next overflowing frame waits in memory, not on disk
    assert isinstance(rig.add(FRAMES[0], 0, take=2), InMemory)


def test_clear_leaves_another_cameras_share_of_the_budget(tmp_path):
    a, b = FeedRig(tmp_path / "a.raw", budget_frames=4), None
    try:
        b = FeedRig(tmp_path / "b.raw", budget=a.budget)  # one allowance, as in Session
        for i in range(SLOTS + 1):
            a.add(FRAMES[i], i)
            b.add(FRAMES[i], i)
        assert a.budget.used == 2 * FRAME_BYTES
        a.feed.clear()
        assert a.budget.used == FRAME_BYTES, "clear gave back another camera's backlog"
    finally:
        a.close()
        if b is not None:
            b.close()


def test_the_spill_file_is_removed_at_close(tmp_path):
    rig = FeedRig(tmp_path / "spill" / "front.raw", budget_frames=0)
    try:
        for i in range(SLOTS + 2):
            rig.add(FRAMES[i], i)
        assert rig.spill_path.exists()
    finally:
        rig.close()
    assert not rig.spill_path.exists()


def test_a_spill_file_that_cannot_be_made_keeps_frames_in_memory(tmp_path, caplog):
    (tmp_path / "a-file").write_text("")
    rig = FeedRig(tmp_path / "a-file" / "front.raw", budget_frames=0)
    try:
        with caplog.at_level(logging.WARNING, logger="shmpipe"):
            places = [rig.add(FRAMES[i], i) for i in range(SLOTS + 2)]
        assert [type(p) for p in places[SLOTS:]] == [InMemory, InMemory]
        assert "cannot spill the backlog" in caplog.text
        rig.read_all()
        assert rig.feed.drain() == 2
        got = [frame for _, _, frame in rig.read_all()]
        np.testing.assert_array_equal(got, FRAMES[SLOTS : SLOTS + 2])
    finally:
        rig.close()


def test_a_loaned_slot_staged_without_write_is_published_from_the_same_memory(rig):
    buffer = rig.feed.loan()
    buffer[...] = FRAMES[0]
    assert rig.feed.source_of(buffer) is None, "the loaned buffer is in place already"
    assert rig.feed.source_of(FRAMES[0].copy()) is not None
    staged = rig.feed.stage(None)
    assert isinstance(staged, InSlot)
    with pytest.raises(ValueError, match="read-only"):  # the loan ended: no late write
        buffer[0, 0] = 7
    rig.feed.commit(staged, 1, 0)
    _, _, frame = rig.read_all()[0]
    np.testing.assert_array_equal(frame, FRAMES[0])


def test_a_loan_while_the_ring_is_full_is_backlogged_without_a_copy(rig):
    for i in range(SLOTS):
        rig.add(FRAMES[i], i)
    buffer = rig.feed.loan()
    buffer[...] = FRAMES[SLOTS]
    staged = rig.feed.stage(None)
    assert isinstance(staged, InMemory) and np.shares_memory(staged.buffer, buffer)
    rig.feed.commit(staged, 1, SLOTS)
    assert np.shares_memory(rig.feed.backlog[0].frame, buffer)
    rig.read_all()
    assert rig.feed.drain() == 1
    np.testing.assert_array_equal(rig.read_all()[0][2], FRAMES[SLOTS])


def _backlog_buffers(rig, first: int, count: int) -> list[np.ndarray]:
    """Fill the ring, then backlog `count` frames from index `first`: their buffers."""
    for i in range(first, first + SLOTS + count):
        rig.add(FRAMES[i % len(FRAMES)], i)
    assert len(rig.feed.backlog) == count
    return [item.frame for item in rig.feed.backlog]


def test_a_warm_backlog_reuses_its_buffers_instead_of_allocating_per_frame(tmp_path):
    rig = FeedRig(tmp_path / "front.raw", budget_frames=8)
    try:
        first = _backlog_buffers(rig, 0, 5)
        got = []
        while rig.feed.backlog or not got:  # the encoder catches up: the backlog drains
            got += rig.read_all()
            rig.feed.drain()
        got += rig.read_all()
        assert [index for _, index, _ in got] == list(range(SLOTS + 5))
        again = _backlog_buffers(rig, SLOTS + 5, 5)
        assert all(any(b is a for a in first) for b in again), "a backlogged frame got new memory"
        # the reused buffers carry the new frames, byte for byte, into the ring
        while rig.feed.backlog:
            got += rig.read_all()
            rig.feed.drain()
        got += rig.read_all()
        for _, index, frame in got:
            np.testing.assert_array_equal(frame, FRAMES[index % len(FRAMES)])
    finally:
        rig.close()


def test_a_cleared_backlog_leaves_its_buffers_to_the_next_episode(tmp_path):
    rig = FeedRig(tmp_path / "front.raw", budget_frames=8)
    try:
        first = _backlog_buffers(rig, 0, 3)
        rig.feed.clear()
        rig.read_all()
        again = _backlog_buffers(rig, 0, 3)
        assert all(any(b is a for a in first) for b in again), "a backlogged frame got new memory"
    finally:
        rig.close()


def test_closing_a_feed_leaves_its_ring_and_doorbell_to_their_owner(tmp_path):
    rig = FeedRig(tmp_path / "front.raw")
    try:
        rig.add(FRAMES[0], 0)
        rig.feed.close()
        assert rig.feed.ring.write_seq == 1, "the feed closed a ring it does not own"
        rig.bell.ring()
        assert rig.bell.wait(0), "the feed closed a doorbell it does not own"
    finally:
        for reader in rig.readers:
            reader.close()
        for thing in (rig.feed.ring, rig.bell, rig.stats_bell):
            thing.close()
            thing.unlink()
