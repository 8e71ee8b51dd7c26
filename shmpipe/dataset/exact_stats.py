"""Exact stats of any LeRobot v3.0 dataset, computed in one streaming pass over its episodes.

Per episode: numpy over its rows, and stats_from_histograms over its image histograms (exact
for every decoded pixel of LeRobot's downsampled frames). Per dataset: the episodes' mergeable
summaries (shmpipe.dataset.stats.DatasetStats) merged in episode order, so the result does not
depend on how the work was split, only on that order. This is what `shmpipe stats` writes and
what `shmpipe merge` merges; LeRobot's own merge averages quantiles instead (lerobot#4156).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from shmpipe.dataset.meta_tables import stat_type
from shmpipe.dataset.scan import Episode, Features
from shmpipe.dataset.stats import DatasetStats
from shmpipe.stats.columns import Stats
from shmpipe.stats.images import STAT_KEYS, stats_from_histograms
from shmpipe.stats.quantiles import QUANTILES


def empty_stats(features: Features) -> DatasetStats:
    return DatasetStats.empty(features.order, features.cameras, features.numeric,
                              features.integers)  # fmt: skip


def column_values(rows: pa.Table, name: str, width: int) -> np.ndarray:
    """(rows, width) float64 values of a numeric data column (plain or fixed-size lists)."""
    column = rows.column(name).combine_chunks()
    while pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
        column = column.flatten()
    return column.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, width)


def episode_stats(
    layout: DatasetStats, features: Features, episode: Episode
) -> tuple[DatasetStats, dict[str, Stats]]:
    """The episode's mergeable summary (laid out as `layout`) and its exact LeRobot stats."""
    columns = {n: column_values(episode.rows, n, w) for n, w in features.numeric.items()}
    summary = layout.episode_stats(columns, episode.histograms)
    exact: dict[str, Stats] = {}
    for name in features.order:
        if name in features.cameras:
            exact[name] = stats_from_histograms(episode.histograms[name])
        else:
            exact[name] = numpy_stats(columns[name], name in features.integers)
    return summary, exact


def numpy_stats(values: np.ndarray, integer: bool) -> Stats:
    """LeRobot's stats of (rows, dims) values, numpy over every row."""
    low, high = values.min(axis=0), values.max(axis=0)
    if integer:
        low, high = low.astype(np.int64), high.astype(np.int64)
    stats = {"min": low, "max": high, "mean": values.mean(axis=0), "std": values.std(axis=0),
             "count": np.array([len(values)], np.int64)}  # fmt: skip
    for key, level in QUANTILES.items():
        stats[key] = np.quantile(values, level, axis=0, method="linear")
    return stats


def stats_columns(order: list[str], episodes: list[Mapping[str, Stats]]) -> dict[str, pa.Array]:
    """meta/episodes' `stats/<feature>/<key>` columns of these episodes' stats, in LeRobot's
    types (nested lists as deep as the array, int64 or double)."""
    out = {}
    for name in order:
        for key in STAT_KEYS:
            values = [np.asarray(e[name][key]) for e in episodes]
            out[f"stats/{name}/{key}"] = pa.array([v.tolist() for v in values],
                                                  stat_type(values[0]))  # fmt: skip
    return out


def differences(stored: Mapping, exact: Mapping[str, Stats], limit: int = 10) -> list[str]:
    """The largest differences of a stored stats.json against exact stats, relative to each
    feature's range, one line each ("action q99 dim 0: stored 13.6, exact 39.3"); a feature
    or stat that is missing is named too."""
    found: list[tuple[float, str]] = []
    for name, stats in exact.items():
        held = stored.get(name) if isinstance(stored, Mapping) else None
        if not isinstance(held, Mapping):
            found.append((np.inf, f"{name}: not in stats.json"))
            continue
        span = np.abs(np.asarray(stats["max"], float) - np.asarray(stats["min"], float))
        scale = max(float(span.max(initial=0.0)), 1e-12)
        for key in STAT_KEYS:
            want = np.asarray(stats[key], float).reshape(-1)
            try:
                got = np.asarray(held[key], float).reshape(-1)
            except (KeyError, TypeError, ValueError):
                got = None
            if got is None or got.shape != want.shape:
                found.append((np.inf, f"{name} {key}: stored is missing or of another shape"))
                continue
            gap = np.abs(got - want)
            dim = int(np.argmax(gap))
            if gap[dim] > 1e-9 * max(scale, float(np.abs(want).max(initial=0.0))):
                line = (f"{name} {key} dim {dim}: stored {got[dim]:.6g}, exact {want[dim]:.6g}")
                found.append((float(gap[dim]) / scale, line))
    found.sort(key=lambda item: -item[0])
    return [line for _, line in found[:limit]]
