"""Plain numpy computations the tests compare shmpipe's incremental stats with."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from shmpipe.stats.quantiles import QUANTILES


def numeric_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot stats per dimension of (n, d) rows, one row per frame; float stats are shape (d,)."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"expected (frames, dims) values, got shape {values.shape}")
    if values.shape[0] == 0:
        raise ValueError("cannot compute stats of zero frames")
    rows = values.astype(np.float64)
    stats = {
        "min": rows.min(axis=0),
        "max": rows.max(axis=0),
        "mean": rows.mean(axis=0),
        "std": rows.std(axis=0),
        "count": np.array([rows.shape[0]], dtype=np.int64),
    }
    for key, level in QUANTILES.items():
        stats[key] = np.quantile(rows, level, axis=0)
    return stats


def merge_histograms(hists: Iterable[np.ndarray]) -> np.ndarray:
    """Sum of histograms, e.g. all episodes' histograms for dataset-level stats."""
    total = None
    for hist in hists:
        total = hist.astype(np.int64, copy=True) if total is None else total + hist
    if total is None:
        raise ValueError("no histograms to merge")
    return total
