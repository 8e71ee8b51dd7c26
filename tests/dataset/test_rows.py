"""EpisodeRows: the rows grow only where the recorder lets them."""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe.dataset.rows import EpisodeRows
from shmpipe.errors import UsageError


def test_rows_grow_only_in_ensure_room_and_append_needs_room():
    rows = EpisodeRows({"s": (2,)}, initial_capacity=2)
    for i in range(2):
        rows.append({"s": np.full(2, i, np.float32)}, 0)
    with pytest.raises(UsageError, match="ensure_room"):
        rows.append({"s": np.zeros(2, np.float32)}, 0)
    assert rows.num_frames == 2
    rows.ensure_room()
    with pytest.raises(ValueError):  # a value that does not fit adds no row
        rows.append({"s": np.zeros(3, np.float32)}, 0)
    assert rows.num_frames == 2
    rows.append({"s": np.full(2, 2, np.float32)}, 1)
    rows.reserve(100)
    np.testing.assert_array_equal(rows.values("s")[:, 0], [0, 1, 2])
    np.testing.assert_array_equal(rows.task_indices(), [0, 0, 1])
