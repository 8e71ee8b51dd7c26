"""The latest-row block: the preview reads the newest numeric row, never a half-written one."""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe.ipc.latest_row import LatestRow

FEATURES = {"observation.state": (3,), "action": (2, 2)}


@pytest.fixture
def rows(shm_name):
    name = shm_name("row")
    writer = LatestRow.create(name, FEATURES)
    reader = LatestRow.attach(name, FEATURES)
    yield writer, reader
    reader.close()
    writer.close()
    writer.unlink()


def row_of(k: int) -> dict:
    return {"observation.state": np.arange(3, dtype=np.float32) + k,
            "action": np.full((2, 2), -k, np.float32)}  # fmt: skip


def test_the_reader_gets_the_newest_row_with_its_frame(rows):
    writer, reader = rows
    assert reader.read() is None
    for k in range(5):
        writer.publish(row_of(k), take=2, frame_index=k)
    count, take, frame_index, values = reader.read()
    assert (count, take, frame_index) == (5, 2, 4)
    np.testing.assert_array_equal(values[reader.slices["observation.state"]], [4, 5, 6])
    np.testing.assert_array_equal(values[reader.slices["action"]], [-4] * 4)
    assert reader.read(after=5) is None  # nothing newer than what it showed


def test_a_row_being_written_is_not_read(rows):
    writer, reader = rows
    writer.publish(row_of(1), take=1, frame_index=0)
    writer._words[0] += 1  # the writer is half-way through a row (odd version)
    assert reader.read() is None
    writer._words[0] += 1
    assert reader.read()[0] == 1


def test_a_row_overwritten_during_the_copy_is_dropped(rows, monkeypatch):
    writer, reader = rows
    writer.publish(row_of(1), take=1, frame_index=0)
    real = reader._values

    class WriterMeanwhile(np.ndarray):
        def copy(self):
            writer.publish(row_of(2), take=1, frame_index=1)
            return np.ndarray.copy(self)

    monkeypatch.setattr(reader, "_values", real.view(WriterMeanwhile))
    assert reader.read() is None
    monkeypatch.setattr(reader, "_values", real)
    assert reader.read()[2] == 1
