"""The frame ring's protocol, in process and across processes: claim, publish, read, release."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from shmpipe.ipc.names import new_token, object_name
from shmpipe.ipc.ring import ENCODER_READER, STATS_READER, RingReader, RingWriter
from tests.helpers.paths import REPO
from tests.helpers.processes import stop_process

SHAPE = (6, 8, 3)


def pattern(seq: int, shape=SHAPE, dtype=np.uint8) -> np.ndarray:
    """A frame that names `seq` in every byte (and differs from its neighbours)."""
    info = np.iinfo(dtype)
    values = (np.arange(int(np.prod(shape)), dtype=np.int64) * 7 + seq * 131) % (info.max + 1)
    return values.reshape(shape).astype(dtype)


class Rig:
    """A writer and both readers of one ring, closed readers first, then the writer, which
    unlinks it (its creator)."""

    def __init__(self, name: str, capacity: int, shape=SHAPE, dtype=np.uint8) -> None:
        self.writer = RingWriter.create(name, capacity, shape, dtype)
        self.encoder = RingReader.attach(name, ENCODER_READER)
        self.stats = RingReader.attach(name, STATS_READER)

    def put(self, seq: int, take: int = 1) -> bool:
        """Claim, fill with pattern(seq) and publish as frame `seq` of `take`; False if full."""
        slot = self.writer.claim()
        if slot is None:
            return False
        slot[...] = pattern(seq, slot.shape, slot.dtype)
        self.writer.publish(take, seq)
        return True

    def close(self) -> None:
        self.encoder.close()
        self.stats.close()
        self.writer.close()
        self.writer.unlink()


@pytest.fixture
def ring(shm_name):
    rig = Rig(shm_name("ring0"), 4)
    yield rig
    rig.close()


def test_frames_keep_their_contents_and_headers_over_several_laps(ring):
    for seq in range(4 * 5 + 2):
        assert ring.put(seq, take=7), f"frame {seq}: ring full though every reader kept up"
        for reader in (ring.encoder, ring.stats):
            slot = reader.read(seq)
            assert (slot.seq, slot.take, slot.frame_index) == (seq, 7, seq)
            np.testing.assert_array_equal(slot.frame, pattern(seq), err_msg=f"frame {seq}")
            del slot
            reader.release_through(seq + 1)
    assert ring.writer.write_seq == 22


def test_slot_header_carries_take_and_frame_index(ring):
    for seq, (take, index) in enumerate([(3, 0), (3, 1), (4, 0), (9, 41)]):
        slot = ring.writer.claim()
        slot[...] = seq
        ring.writer.publish(take, index)
    got = [(s.take, s.frame_index) for s in map(ring.stats.read, range(4))]
    assert got == [(3, 0), (3, 1), (4, 0), (9, 41)]


def test_full_ring_claims_nothing_until_both_readers_release(ring):
    for seq in range(4):
        assert ring.put(seq)
    assert ring.writer.claim() is None
    ring.encoder.release_through(4)
    assert ring.writer.claim() is None, "the writer reused a slot the stats reader holds"
    ring.stats.release_through(1)
    assert ring.writer.slots_used() == 3
    assert ring.put(4)
    np.testing.assert_array_equal(ring.encoder.read(4).frame, pattern(4))
    with pytest.raises(RuntimeError, match="slot 0 holds frame 4"):
        ring.stats.read(0)  # released: frame 4 took its slot


def test_a_slow_second_reader_holds_the_writer_back(ring):
    written = 0
    for _ in range(3):
        while ring.put(written):
            written += 1
            ring.encoder.release_through(written)  # the fast reader keeps up
        assert written == ring.stats.released(STATS_READER) + 4, "writer overran the slow reader"
        # the slow reader finds every frame intact, then catches up by two
        start = ring.stats.released(STATS_READER)
        for seq in range(start, written):
            np.testing.assert_array_equal(ring.stats.read(seq).frame, pattern(seq))
        ring.stats.release_through(start + 2)
    assert written == 4 + 2 + 2


def test_reading_an_unpublished_frame_raises(ring):
    ring.put(0)
    with pytest.raises(RuntimeError, match="frame 1 is not published yet"):
        ring.encoder.read(1)
    ring.writer.claim()[...] = 1  # claimed, filled, not published: still not readable
    with pytest.raises(RuntimeError, match="not published"):
        ring.stats.read(1)


def test_reading_an_overwritten_frame_raises_instead_of_returning_another(ring):
    for seq in range(5):
        ring.put(seq)
        ring.stats.release_through(seq + 1)
        ring.encoder.release_through(seq + 1)
    with pytest.raises(RuntimeError, match="slot 0 holds frame 4, expected 0"):
        ring.encoder.read(0)


def test_releasing_past_the_published_frames_raises(ring):
    ring.put(0)
    ring.put(1)
    with pytest.raises(RuntimeError, match="cannot release past the published frames"):
        ring.encoder.release_through(3)
    assert ring.encoder.released(ENCODER_READER) == 0
    ring.encoder.release_through(2)
    ring.encoder.release_through(1)  # going back is ignored: released only grows
    assert ring.encoder.released(ENCODER_READER) == 2


def test_uint16_depth_ring_keeps_full_range_values(shm_name):
    rig = Rig(shm_name("ring0"), 3, (5, 7, 1), np.uint16)
    try:
        assert rig.writer.dtype == np.uint16
        assert rig.writer.frame_bytes == 5 * 7 * 2
        for seq in range(7):
            slot = rig.writer.claim()
            assert slot.dtype == np.uint16 and slot.shape == (5, 7, 1)
            slot[...] = pattern(seq, (5, 7, 1), np.uint16)
            slot[0, 0, 0] = 65535 - seq  # beyond 8 bits
            rig.writer.publish(1, seq)
            frame = rig.encoder.read(seq).frame
            assert frame[0, 0, 0] == 65535 - seq
            np.testing.assert_array_equal(frame[1:], pattern(seq, (5, 7, 1), np.uint16)[1:])
            del frame
            rig.encoder.release_through(seq + 1)
            rig.stats.release_through(seq + 1)
    finally:
        rig.close()


def test_wake_needed_is_true_once_per_sleep_and_only_for_the_sleeper(ring):
    assert not ring.writer.wake_needed(ENCODER_READER)
    ring.stats.set_asleep(True)
    assert not ring.writer.wake_needed(ENCODER_READER)
    assert ring.writer.wake_needed(STATS_READER)
    assert not ring.writer.wake_needed(STATS_READER), "a sleeper must be rung once, not twice"
    ring.stats.set_asleep(True)
    ring.stats.set_asleep(False)  # woke by itself (timeout): nothing to ring
    assert not ring.writer.wake_needed(STATS_READER)


def test_high_water_keeps_the_most_slots_in_use_until_reset(ring):
    for seq in range(3):
        ring.put(seq)
    assert ring.writer.high_water == 3
    for reader in (ring.encoder, ring.stats):
        reader.release_through(3)
    ring.put(3)
    assert ring.writer.high_water == 3
    ring.writer.reset_high_water()
    assert ring.writer.high_water == 1
    ring.put(4)
    assert ring.writer.high_water == 2


def test_progress_and_heartbeat_are_seen_by_the_writer(ring):
    for seq in range(3):
        ring.put(seq)
    ring.encoder.set_progress(2)
    assert ring.writer.progress(ENCODER_READER) == 2
    ring.encoder.release_through(3)
    assert ring.writer.progress(ENCODER_READER) == 3, "released frames count as read"
    ring.stats.beat()
    ring.stats.beat(flushing=True)
    assert ring.writer.heartbeat(STATS_READER) == (2, True)
    assert ring.writer.heartbeat(ENCODER_READER) == (0, False)


def test_ring_of_fewer_than_two_slots_is_refused():
    with pytest.raises(ValueError, match="at least 2 slots"):
        RingWriter.create(object_name(os.getpid(), new_token(), "ring0"), 1, SHAPE)


# The encoder reader in its own process: checks every frame it reads, releases it, and says
# how many it checked.
READER_CHILD = """
import sys, time
import numpy as np
from shmpipe.ipc.ring import ENCODER_READER, RingReader
from tests.ipc.test_ring import pattern

name, frames = sys.argv[1], int(sys.argv[2])
ring = RingReader.attach(name, ENCODER_READER)
deadline = time.monotonic() + 30
seq = 0
while seq < frames and time.monotonic() < deadline:
    if not ring.unread(seq):
        time.sleep(0.0005)
        continue
    slot = ring.read(seq)
    if (slot.take, slot.frame_index) != (2, seq) or not np.array_equal(slot.frame, pattern(seq)):
        sys.exit(f"frame {seq}: wrong header or contents")
    del slot
    seq += 1
    ring.release_through(seq)
ring.close()
print(seq)
"""


def test_a_reader_in_another_process_reads_every_frame_across_wrap_around(ring):
    frames = 4 * 10
    child = subprocess.Popen(
        [sys.executable, "-c", READER_CHILD, ring.writer.name, str(frames)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        seq, deadline = 0, time.monotonic() + 30
        while seq < frames and time.monotonic() < deadline:
            if not ring.put(seq, take=2):
                time.sleep(0.0005)  # the child has not released yet: the ring is full
                continue
            ring.stats.release_through(seq + 1)
            seq += 1
        out, err = child.communicate(timeout=30)
    finally:
        stop_process(child)
    assert child.returncode == 0, err[-2000:]
    assert int(out) == frames
    assert ring.writer.high_water <= 4
    assert ring.writer.released(ENCODER_READER) == frames
