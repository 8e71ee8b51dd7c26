"""Is meta/stats.json what its episodes say, and (for shmpipe's datasets) what the rows say?

LeRobot merges per-episode stats into dataset stats: counts add up, min/max are the extremes,
mean and std are count-weighted. shmpipe's dataset stats are exact instead, so for its datasets
the numeric features' stats must equal numpy over every row.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from shmpipe.stats.quantiles import QUANTILES

MERGE_RTOL = 1e-6  # per-episode stats are stored rounded, then merged once more
EXACT_RTOL = 1e-9

Problems = list[tuple[str, str]]  # (feature, what is wrong)


def merge_problems(dataset_stats: Mapping[str, dict], episodes: list[dict]) -> Problems:
    """Each dataset stat that disagrees with the merge of the per-episode stats of meta/episodes
    (columns `stats/<feature>/<key>`). Features without per-episode stats are not checked."""
    out: Problems = []
    for name, stats in dataset_stats.items():
        columns = {key: f"stats/{name}/{key}" for key in ("count", "min", "max", "mean", "std")}
        if not episodes or any(column not in episodes[0] for column in columns.values()):
            continue
        try:
            per = {key: np.array([e[col] for e in episodes], float) for key, col in columns.items()}
            counts = per["count"].reshape(-1, *[1] * (per["mean"].ndim - 1))
        except (TypeError, ValueError) as error:
            out.append((name, f"per-episode stats in meta/episodes are unreadable: {error}"))
            continue
        total = counts.sum()
        mean = (counts * per["mean"]).sum(axis=0) / total
        second_moment = (counts * (per["std"] ** 2 + per["mean"] ** 2)).sum(axis=0) / total
        merged = {
            "count": np.array([total]),
            "min": per["min"].min(axis=0),
            "max": per["max"].max(axis=0),
            "mean": mean,
            "std": np.sqrt(np.maximum(second_moment - mean**2, 0)),
        }
        # std is held to the second moment's scale: var = E[x²] - mean² cancels digits
        scales = {key: np.sqrt(second_moment) if key == "std" else v for key, v in merged.items()}
        out += _compare(name, stats, merged, scales, MERGE_RTOL, "merging the episodes' stats")
    return out


def exact_problems(dataset_stats: Mapping[str, dict], rows: Mapping[str, np.ndarray]) -> Problems:
    """Each stat of a numeric feature that is not numpy's over all its `rows` (frames, dims)."""
    out: Problems = []
    for name, values in rows.items():
        if name not in dataset_stats:
            out.append((name, "is not in meta/stats.json"))
            continue
        want = {
            "count": np.array([len(values)]),
            "min": values.min(axis=0),
            "max": values.max(axis=0),
            "mean": values.mean(axis=0),
            "std": values.std(axis=0),
        }
        for key, level in QUANTILES.items():
            want[key] = np.quantile(values, level, axis=0, method="linear")
        out += _compare(name, dataset_stats[name], want, want, EXACT_RTOL, "numpy over all rows")
    return out


def _stat(stats: Mapping[str, object], key: str) -> np.ndarray | None:
    try:
        return np.asarray(stats[key], float).reshape(-1)
    except (KeyError, TypeError, ValueError):
        return None


def _compare(
    name: str,
    stats: Mapping[str, object],
    wanted: Mapping[str, np.ndarray],
    scales: Mapping[str, np.ndarray],
    rtol: float,
    source: str,
) -> Problems:
    """One problem naming the first stat of `name` that is not as `wanted` (within rtol of the
    largest of its `scales`) and the keys of the others; [] if all are."""
    wrong = {key: _difference(_stat(stats, key), wanted[key], scales[key], rtol) for key in wanted}
    wrong = {key: message for key, message in wrong.items() if message}
    if not wrong:
        return []
    first, *others = wrong
    also = f"; also {', '.join(others)} differ" if others else ""
    return [(name, f"{first}{wrong[first]} ({source}){also}")]


def _difference(
    found: np.ndarray | None, want: np.ndarray, scale: np.ndarray, rtol: float
) -> str | None:
    """How `found` differs from `want`, e.g. "[2] is 0.5, expected 0.25"; None if it does not."""
    want = np.asarray(want, float).reshape(-1)
    if found is None:
        return " is missing or unreadable"
    if found.shape != want.shape:
        return f" has {found.size} values, expected {want.size}"
    tolerance = rtol * max(float(np.abs(scale).max(initial=0.0)), 1e-12)
    wrong = np.flatnonzero(~(np.abs(found - want) <= tolerance))  # NaN is wrong too
    if len(wrong) == 0:
        return None
    i = wrong[0]
    return f"[{i}] is {float(found[i])!r}, expected {float(want[i])!r}"
