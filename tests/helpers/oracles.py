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


def exact_image_stats(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-channel stats straight from numpy over LeRobot's downsampled pixels, scaled to [0,1]."""
    h, w = frames[0].shape[:2]
    k = 1 if max(h, w) < 300 else int(max(h, w) / 150)
    pixels = np.concatenate([f[::k, ::k].reshape(-1, 3) for f in frames]).astype(np.float64) / 255
    out = {
        "min": pixels.min(axis=0),
        "max": pixels.max(axis=0),
        "mean": pixels.mean(axis=0),
        "std": pixels.std(axis=0),
    }
    for key, q in {"q01": 0.01, "q10": 0.1, "q50": 0.5, "q90": 0.9, "q99": 0.99}.items():
        out[key] = np.quantile(pixels, q, axis=0)
    out = {k: v.reshape(3, 1, 1) for k, v in out.items()}
    out["count"] = np.array([pixels.shape[0]])
    return out
