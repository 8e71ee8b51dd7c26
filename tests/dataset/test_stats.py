"""Exact stats: the dataset's and each episode's equal one numpy pass over their frames."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe.stats.columns import ColumnValues
from shmpipe.stats.images import STAT_KEYS
from tests.helpers.dataset_writer import (
    INTEGER_COLUMNS,
    Recorded,
    assert_stats_equal,
    numpy_stats,
    open_writer,
    read_json,
    record_episode,
)
from tests.helpers.oracles import numeric_stats


# -- stats -------------------------------------------------------------------------------------
def test_dataset_stats_equal_one_numpy_pass_over_all_frames(tmp_path):
    recorded = Recorded()
    with open_writer(tmp_path / "ds") as w:
        for seed, length in enumerate([30, 7, 1, 45, 12]):
            tasks = ["a", "b"] if seed % 2 else ["c"]
            committed = record_episode(w, length, tasks, seed, recorded)
            episode_only = Recorded()
            episode_only.columns = recorded.columns[-1:]
            episode_only.frames = {n: f[-length:] for n, f in recorded.frames.items()}
            for name, want in numpy_stats(episode_only).items():
                assert_stats_equal(committed.stats[name], want, f"episode {seed} {name}")
    stats = read_json(tmp_path / "ds/meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")
    for name in INTEGER_COLUMNS:
        assert all(isinstance(v, int) for v in stats[name]["min"] + stats[name]["max"]), name


def test_episode_stats_columns_hold_that_episodes_stats(tmp_path):
    recorded = Recorded()
    with open_writer(tmp_path / "ds") as w:
        record_episode(w, 20, ["a"], 0, recorded)
        record_episode(w, 9, ["a"], 1, recorded)
    row = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-001.parquet").to_pylist()[0]
    second = Recorded()
    second.columns = recorded.columns[1:]
    second.frames = {n: f[20:] for n, f in recorded.frames.items()}
    for name, want in numpy_stats(second).items():
        got = {key: row[f"stats/{name}/{key}"] for key in STAT_KEYS}
        assert_stats_equal(got, want, f"episode 1 {name}")
    assert (row["dataset_from_index"], row["dataset_to_index"], row["length"]) == (20, 29, 9)


@pytest.mark.parametrize("sizes", [[1], [2, 3], [5, 1, 8, 13], [100, 1, 1, 57]])
def test_merged_column_values_give_numpys_quantiles_exactly(sizes):
    rng = np.random.default_rng(len(sizes))
    parts = [rng.integers(-5, 5, (n, 3)).astype(np.float32) / 3 for n in sizes]  # many ties
    merged = ColumnValues.empty(3)
    for part in parts:
        merged = merged.merged(ColumnValues.of(part))
    assert_stats_equal(merged.stats(), numeric_stats(np.concatenate(parts)), f"sizes {sizes}")
