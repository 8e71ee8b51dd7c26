"""EpisodeRows: the rows grow only where the recorder lets them; typed features keep their
dtype, in the table and in exact stats."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from shmpipe.dataset.feature_types import FeatureSpec
from shmpipe.dataset.rows import EpisodeRows, rows_table
from shmpipe.dataset.stats import DatasetStats
from shmpipe.errors import UsageError
from tests.helpers.oracles import numeric_stats


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


TYPED = {"on": ((1,), "bool"), "n": ((2,), "int64"), "k": ((1,), "int32"), "x": ((2,), "float64")}


def typed_rows(seed: int, frames: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "on": rng.random((frames, 1)) < 0.3,
        "n": rng.integers(-(2**40), 2**40, (frames, 2)),
        "k": rng.integers(-5, 5, (frames, 1)).astype(np.int32),
        "x": rng.normal(0, 1e6, (frames, 2)),
    }


def test_typed_rows_keep_their_dtype_and_make_lerobots_columns():
    rows = EpisodeRows(TYPED, initial_capacity=1)
    values = typed_rows(0, 9)
    for i in range(9):
        rows.ensure_room()
        rows.append({name: v[i] for name, v in values.items()}, 0)
    table = rows_table(rows.columns(30, 0, 0), rows.features)
    assert [str(table.schema.field(n).type) for n in TYPED] == [
        "bool", "fixed_size_list<item: int64>[2]", "int32", "fixed_size_list<item: double>[2]"]
    for name, want in values.items():
        assert rows.values(name).dtype == want.dtype and np.array_equal(rows.values(name), want)
        column = table.column(name).combine_chunks()
        flat = column.flatten() if pa.types.is_fixed_size_list(column.type) else column
        got = flat.to_numpy(zero_copy_only=False).reshape(9, -1)
        assert got.dtype == want.dtype and np.array_equal(got, want), name


def test_typed_columns_stats_merged_by_episode_equal_numpy_over_all_rows():
    order = list(TYPED)
    widths = {name: FeatureSpec(*spec).width for name, spec in TYPED.items()}
    empty = DatasetStats.empty(order, {}, widths, integers={"n", "k"})
    episodes = [typed_rows(seed, frames) for seed, frames in enumerate([1, 17, 4])]
    merged = empty
    for values in episodes:
        merged = merged.merged(empty.episode_stats(values, {}))
    stats = merged.stats()
    for name in order:
        want = numeric_stats(np.concatenate([e[name] for e in episodes]))
        for key, value in want.items():  # atol: a mean of 0 comes out as 1e-16 after merging
            np.testing.assert_allclose(stats[name][key], value, rtol=1e-12, atol=1e-12,
                                       err_msg=name + key)  # fmt: skip
    assert stats["n"]["min"].dtype == np.int64 and stats["k"]["max"].dtype == np.int64
    assert stats["on"]["min"].dtype == np.float64  # 0.0 / 1.0, as LeRobot 0.6.1 writes bools
