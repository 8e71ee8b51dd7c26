"""The ring header keeps frames, health and sleep flags apart, and a ring serves the number of
readers it was made for: the writer waits for the slowest of them."""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe.ipc import ring_header as hdr
from shmpipe.ipc.ring import RingReader, RingWriter
from tests.ipc.test_ring import SHAPE, pattern


def test_every_reader_has_a_cache_line_of_its_own_in_each_section():
    owner: dict[int, tuple[str, int]] = {}
    for reader in range(hdr.MAX_READERS):
        sections = {"frames": (hdr.released(reader), hdr.progress(reader)),
                    "health": (hdr.heartbeat(reader), hdr.flushing(reader)),
                    "sleep": (hdr.asleep(reader),)}  # fmt: skip
        for section, words in sections.items():
            (line,) = {word // hdr.LINE for word in words}
            assert line not in owner, f"{section} of reader {reader} shares {owner.get(line)}'s"
            owner[line] = (section, reader)
    assert min(owner) == 2, "a reader's words share the geometry or the writer's line"
    assert max(owner) < hdr.HEADER_BYTES // (hdr.LINE * 8), "the sections overflow the header"


@pytest.mark.parametrize("readers", [0, hdr.MAX_READERS + 1])
def test_a_reader_count_the_header_cannot_hold_is_refused(shm_name, readers):
    with pytest.raises(ValueError, match=f"1 to {hdr.MAX_READERS} readers, got {readers}"):
        RingWriter.create(shm_name("ring0"), 4, SHAPE, readers=readers)


@pytest.fixture
def three(shm_name):
    """A 4-slot ring made for three readers, each attached."""
    writer = RingWriter.create(shm_name("ring0"), 4, SHAPE, readers=3)
    readers = [RingReader.attach(writer.name, r) for r in range(3)]
    yield writer, readers
    for reader in readers:
        reader.close()
    writer.close()
    writer.unlink()


def put(writer: RingWriter, seq: int) -> bool:
    slot = writer.claim()
    if slot is None:
        return False
    slot[...] = pattern(seq)
    writer.publish(1, seq)
    return True


def test_the_writer_waits_for_the_slowest_of_three_readers(three):
    writer, readers = three
    assert writer.readers == 3
    for seq in range(4):
        assert put(writer, seq)
    readers[0].release_through(4)
    readers[1].release_through(4)
    assert not put(writer, 4), "the writer reused a slot the third reader holds"
    readers[2].release_through(2)
    assert writer.slots_used() == 2
    assert put(writer, 4) and put(writer, 5) and not put(writer, 6)
    for reader in readers:
        np.testing.assert_array_equal(reader.read(5).frame, pattern(5))
    assert writer.high_water == 4


def test_a_reader_the_ring_was_not_made_for_is_refused(three):
    writer, _ = three
    with pytest.raises(ValueError, match="has readers 0..2, not 3"):
        RingReader.attach(writer.name, 3)


def test_health_and_sleep_flags_never_move_the_frames(three):
    writer, readers = three
    for seq in range(3):
        put(writer, seq)
    readers[1].release_through(2)
    readers[1].set_progress(3)
    before = (writer.slots_used(), [(writer.released(r), writer.progress(r)) for r in range(3)])
    readers[1].beat(flushing=True)
    readers[1].beat()
    readers[2].set_asleep(True)
    assert (writer.slots_used(), [(writer.released(r), writer.progress(r)) for r in range(3)]) \
        == before  # fmt: skip
    assert [writer.heartbeat(r) for r in range(3)] == [(0, False), (2, False), (0, False)]
    assert [writer.sleeping(r) for r in range(3)] == [False, False, True]
    assert writer.wake_needed(2) and not writer.sleeping(2)
    assert writer.heartbeat(1) == (2, False), "ringing a sleeper touched another's health"
