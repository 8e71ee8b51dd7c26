"""Is meta/stats.json what its episodes say, and (for shmpipe's datasets) what the rows say?

LeRobot merges per-episode stats into dataset stats: counts add up, min/max are the extremes,
mean and std are count-weighted. shmpipe's dataset stats are exact instead (quantiles within a
stated rank error past sketch.K values), so for its datasets the numeric features' stats must be
numpy's over every row; RowStats computes those file by file, in bounded memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from shmpipe.stats.quantiles import QUANTILES
from shmpipe.stats.sketch import K

MERGE_RTOL = 1e-6  # per-episode stats are stored rounded, then merged once more
EXACT_RTOL = 1e-9
# Past sketch.K values, shmpipe's quantiles are a summary's: allowed rank error, a fraction of
# the count (twice the bound the README states for shmpipe.stats.sketch).
RANK_TOLERANCE = 0.01

Problems = list[tuple[str, str]]  # (feature, what is wrong)


MERGED_KEYS = ("count", "min", "max", "mean", "std")


class EpisodeStatsMerge:
    """The merge of the per-episode stats of meta/episodes (columns `stats/<feature>/<key>`),
    fed one meta/episodes table at a time: per feature a count, count-weighted first and second
    moments and extremes, so memory does not grow with the episodes. Features without
    per-episode stats in some file are not checked."""

    def __init__(self) -> None:
        self.sums: dict[str, dict[str, np.ndarray]] = {}
        self.skipped: set[str] = set()  # no per-episode stats in some file
        self.unreadable: dict[str, str] = {}

    def add(self, table: pa.Table) -> None:
        present = set(table.column_names)
        names = {c.split("/")[1] for c in present if c.startswith("stats/")}
        for name in self.sums.keys() - names:
            self.skipped.add(name)
        for name in names - self.skipped - self.unreadable.keys():
            columns = {key: f"stats/{name}/{key}" for key in MERGED_KEYS}
            if any(column not in present for column in columns.values()):
                self.skipped.add(name)
                continue
            try:
                self._add(name, {k: np.array(table.column(c).to_pylist(), float)
                                 for k, c in columns.items()})  # fmt: skip
            except (TypeError, ValueError) as error:
                self.unreadable[name] = (
                    f"per-episode stats in meta/episodes are unreadable: {error}"
                )

    def _add(self, name: str, per: dict[str, np.ndarray]) -> None:
        counts = per["count"].reshape(-1, *[1] * (per["mean"].ndim - 1))
        part = {"count": counts.sum(), "first": (counts * per["mean"]).sum(axis=0),
                "second": (counts * (per["std"] ** 2 + per["mean"] ** 2)).sum(axis=0),
                "min": per["min"].min(axis=0), "max": per["max"].max(axis=0)}  # fmt: skip
        old = self.sums.get(name)
        if old is not None:
            part = {"count": old["count"] + part["count"], "first": old["first"] + part["first"],
                    "second": old["second"] + part["second"],
                    "min": np.minimum(old["min"], part["min"]),
                    "max": np.maximum(old["max"], part["max"])}  # fmt: skip
        self.sums[name] = part

    def problems(self, dataset_stats: Mapping[str, dict], skip: Sequence[str] = ()) -> Problems:
        """Each dataset stat (but those of `skip`) that disagrees with the merge."""
        out: Problems = []
        for name, stats in dataset_stats.items():
            if name in self.unreadable and name not in skip:
                out.append((name, self.unreadable[name]))
            sums = self.sums.get(name)
            if sums is None or name in self.skipped or name in skip or name in self.unreadable:
                continue
            total = sums["count"]
            mean = sums["first"] / total
            second_moment = sums["second"] / total
            merged = {
                "count": np.array([total]),
                "min": sums["min"],
                "max": sums["max"],
                "mean": mean,
                "std": np.sqrt(np.maximum(second_moment - mean**2, 0)),
            }
            # std is held to the second moment's scale: var = E[x²] - mean² cancels digits
            scales = {k: np.sqrt(second_moment) if k == "std" else v for k, v in merged.items()}
            out += compare(name, stats, merged, scales, MERGE_RTOL, "merging the episodes' stats")
        return out


def _stat(stats: Mapping[str, object], key: str) -> np.ndarray | None:
    try:
        return np.asarray(stats[key], float).reshape(-1)
    except (KeyError, TypeError, ValueError):
        return None


def compare(
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


class RowStats:
    """numpy's stats of each numeric feature over data files fed one at a time (bounded memory).

    count, min, max, mean and std are exact (each file's numpy moments, merged in float64).
    Quantiles: while a feature holds at most sketch.K values (where shmpipe's quantiles are
    exact) its values are kept and compared with np.quantile; past that, the rank of each value
    stats.json claims is counted, and must be within RANK_TOLERANCE * count of its level's.
    """

    def __init__(self, claimed: Mapping[str, dict] | None) -> None:
        self.claimed = {}  # feature -> {quantile key: (dims,) value stats.json gives}
        for name, stats in (claimed if isinstance(claimed, dict) else {}).items():
            values = {key: _stat(stats, key) for key in QUANTILES}
            if isinstance(stats, dict) and all(v is not None for v in values.values()):
                self.claimed[name] = values
        self.moments: dict[str, dict[str, np.ndarray]] = {}
        self.kept: dict[str, list[np.ndarray] | None] = {}
        self.ranks: dict[str, dict[str, np.ndarray]] = {}  # key -> (2, dims) # below, # at most

    @classmethod
    def of(cls, stats_json: Path) -> RowStats:
        """Checking the quantiles of this stats.json, if it reads (else stats() reports it)."""
        try:
            return cls(json.loads(stats_json.read_text()))
        except (OSError, ValueError):
            return cls(None)

    def add(self, name: str, values: np.ndarray) -> None:
        """(rows, dims) float64 values of one more data file."""
        n = len(values)
        if n == 0:
            return
        mean = values.mean(axis=0)
        part = {"count": np.array([n]), "min": values.min(axis=0), "max": values.max(axis=0),
                "mean": mean, "m2": ((values - mean) ** 2).sum(axis=0)}  # fmt: skip
        self.moments[name] = _merged(self.moments.get(name), part)
        kept = self.kept.setdefault(name, [])
        if kept is not None:
            kept.append(values)
            if int(self.moments[name]["count"][0]) > K:
                self.kept[name] = None
        for key, claimed in self.claimed.get(name, {}).items():
            if claimed.shape != (values.shape[1],):
                continue
            ranks = np.stack([(values < claimed).sum(axis=0), (values <= claimed).sum(axis=0)])
            self.ranks.setdefault(name, {})[key] = self.ranks.get(name, {}).get(key, 0) + ranks

    def problems(self, dataset_stats: Mapping[str, dict]) -> Problems:
        out: Problems = []
        for name, m in self.moments.items():
            if name not in dataset_stats:
                out.append((name, "is not in meta/stats.json"))
                continue
            count = int(m["count"][0])
            want = {"count": m["count"], "min": m["min"], "max": m["max"], "mean": m["mean"],
                    "std": np.sqrt(m["m2"] / count)}  # fmt: skip
            if self.kept.get(name) is not None:
                values = np.concatenate(self.kept[name])
                for key, level in QUANTILES.items():
                    want[key] = np.quantile(values, level, axis=0, method="linear")
            else:
                out += self._rank_problems(name, count)
            out += compare(name, dataset_stats[name], want, want, EXACT_RTOL, "numpy over all rows")
        return out

    def _rank_problems(self, name: str, count: int) -> Problems:
        out: Problems = []
        tolerance = RANK_TOLERANCE * count
        for key, level in QUANTILES.items():
            ranks = self.ranks.get(name, {}).get(key)
            if ranks is None:
                out.append((name, f"{key} is missing or unreadable"))
                continue
            position = level * (count - 1)
            below, at_most = ranks
            wrong = np.flatnonzero((below > np.ceil(position) + tolerance)
                                   | (at_most < np.floor(position) + 1 - tolerance))  # fmt: skip
            if len(wrong):
                i = wrong[0]
                out.append((name, f"{key}[{i}] has rank {below[i]}..{at_most[i]} of {count} "
                                  f"values, expected {position:.0f} within {tolerance:.0f} "
                                  f"(RANK_TOLERANCE {RANK_TOLERANCE})"))  # fmt: skip
        return out


def _merged(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Moments of both parts (Chan et al.), in float64."""
    if a is None:
        return b
    na, nb = float(a["count"][0]), float(b["count"][0])
    delta = b["mean"] - a["mean"]
    return {"count": a["count"] + b["count"], "min": np.minimum(a["min"], b["min"]),
            "max": np.maximum(a["max"], b["max"]), "mean": a["mean"] + delta * (nb / (na + nb)),
            "m2": a["m2"] + b["m2"] + delta**2 * (na * nb / (na + nb))}  # fmt: skip
