"""Numeric column stats in bounded memory: exact moments, quantiles exact up to sketch.K values
and within the sketch's stated rank error past that (against numpy on millions of values)."""

import numpy as np

from shmpipe.stats.columns import ColumnValues
from shmpipe.stats.quantiles import QUANTILES
from shmpipe.stats.sketch import K
from tests.helpers.oracles import numeric_stats


def merged_in_parts(values: np.ndarray, part: int) -> ColumnValues:
    column = ColumnValues.empty(values.shape[1])
    for start in range(0, len(values), part):
        column = column.merged(ColumnValues.of(values[start : start + part]))
    return column


def test_quantiles_are_numpys_bit_for_bit_up_to_k_values():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(K, 3)).astype(np.float32)
    stats = merged_in_parts(values, 300).stats()
    want = numeric_stats(values)
    for key in ("min", "max", "count", *QUANTILES):
        np.testing.assert_array_equal(stats[key], want[key], err_msg=key)


def test_three_million_values_exact_moments_and_quantiles_within_the_stated_bound():
    rng = np.random.default_rng(2)
    n = 3_000_000
    values = np.stack(
        [rng.standard_normal(n), np.round(rng.standard_cauchy(n), 1)], axis=1
    ).astype(np.float32)  # smooth, and heavy-tailed with many ties
    column = merged_in_parts(values, 3000)
    stats, want = column.stats(), numeric_stats(values)
    for key in ("min", "max", "count"):
        np.testing.assert_array_equal(stats[key], want[key], err_msg=key)
    for key in ("mean", "std"):
        np.testing.assert_allclose(stats[key], want[key], rtol=1e-9, err_msg=key)
    bound = column.sketch.rank_error_bound()
    assert 0 < bound <= 0.006 * n, f"stated rank-error bound {bound / n:.4%} of n"
    items = sum(level.shape[1] for level in column.sketch.levels)
    assert items <= 3 * K, f"the sketch holds {items} items per dimension"
    ordered = np.sort(values.astype(np.float64), axis=0)
    for key, level in QUANTILES.items():
        target = level * (n - 1)
        for dim in range(2):
            below = np.searchsorted(ordered[:, dim], stats[key][dim], side="left")
            at_most = np.searchsorted(ordered[:, dim], stats[key][dim], side="right")
            error = max(below - np.ceil(target), np.floor(target) + 1 - at_most, 0)
            assert error <= bound, f"{key} dim {dim}: rank error {error}, bound {bound:.0f}"


def test_same_merges_give_the_same_sketch_and_it_survives_saving():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(20_000, 4))
    a, b = merged_in_parts(values, 700), merged_in_parts(values, 700)
    saved = a.to_arrays("x.")
    assert saved.keys() == b.to_arrays("x.").keys()
    for name, array in saved.items():
        np.testing.assert_array_equal(array, b.to_arrays("x.")[name], err_msg=name)
    again = ColumnValues.from_arrays(saved, "x.", 4)
    more = rng.normal(size=(500, 4))
    for key, value in a.merged(ColumnValues.of(more)).stats().items():
        np.testing.assert_array_equal(again.merged(ColumnValues.of(more)).stats()[key], value)
