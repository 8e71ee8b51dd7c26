"""A segment's close only unmaps it from this process; unlink, the creator's own call, removes the
name, as in CPython's multiprocessing.shared_memory."""

from __future__ import annotations

import posix_ipc
import pytest

from shmpipe.ipc import names
from shmpipe.ipc.segment import Segment


def test_closing_the_creators_segment_leaves_its_name_and_memory(shm_name):
    segment = Segment.create(shm_name("seg"), 4096)
    segment.buffer[:5] = b"hello"
    segment.close()
    other = Segment.attach(segment.name)
    try:
        assert bytes(other.buffer[:5]) == b"hello"
    finally:
        other.close()
        segment.unlink()
    assert segment.name.lstrip("/") not in names.list_objects()


def test_unlink_removes_the_name_and_keeps_the_memory_of_those_that_mapped_it(shm_name):
    segment = Segment.create(shm_name("seg"), 4096)
    other = Segment.attach(segment.name)
    segment.unlink()
    with pytest.raises(posix_ipc.ExistentialError):
        Segment.attach(segment.name)
    segment.buffer[:3] = b"abc"
    assert bytes(other.buffer[:3]) == b"abc"
    segment.unlink()  # a name already gone is no error
    other.close()
    segment.close()
    segment.close()  # nor is closing twice


def test_an_attacher_closing_leaves_the_creators_segment(shm_name):
    segment = Segment.create(shm_name("seg"), 4096)
    Segment.attach(segment.name).close()
    again = Segment.attach(segment.name)
    again.close()
    segment.close()
    segment.unlink()
