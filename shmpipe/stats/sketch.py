"""A mergeable quantile summary in bounded memory: exact while small, KLL-style compactors after.

Dataset-level quantiles cannot be averaged from episodes' quantiles, and keeping every value
costs O(dataset) per commit. A sketch keeps at most about 3 * K items per dimension, whatever
the number of values, and merges an episode in O(episode). Up to K values it holds them all and
its quantiles are numpy's, bit for bit. Past that its rank error is bounded, and the sketch
tracks its own bound (rank_error_bound): see the README's "Dataset stats in bounded memory".
"""

from __future__ import annotations

import math

import numpy as np

K = 2048  # items of the top level; the sketch is exact up to K values per dimension
MIN_CAPACITY = 8
_MASK = (1 << 64) - 1


class QuantileSketch:
    """Items per level: level h holds (dims, m_h) float64 values, sorted per dimension, that
    each stand for 2**h values (every dimension gets as many values, so levels are 2-d).

    A level over its capacity is compacted: every other item (offset 0 or 1, a
    deterministic coin keyed by level and compaction count) moves up with twice the weight.
    One compaction at level h moves any rank by at most 2**h, and the coins make these errors
    cancel: `variance` sums their squares for a Hoeffding bound. Instances are never changed
    in place (merged returns a new sketch), so a failed commit leaves the old one whole.
    """

    __slots__ = ("levels", "compactions", "variance", "_cache")

    def __init__(self, levels: list[np.ndarray], compactions: list[int], variance: float):
        self.levels = levels
        self.compactions = compactions  # per level, how many times it was compacted
        self.variance = variance  # sum over compactions of (2**level)**2
        self._cache: tuple[np.ndarray, np.ndarray | None] | None = None

    @classmethod
    def of(cls, values: np.ndarray) -> QuantileSketch:
        """(dims, n) values, kept exactly until merged past K."""
        sketch = cls([np.sort(np.asarray(values, np.float64), axis=1)], [0], 0.0)
        sketch._compress()
        return sketch

    @property
    def count(self) -> int:
        return sum(level.shape[1] << h for h, level in enumerate(self.levels))

    @property
    def exact(self) -> bool:
        return len(self.levels) == 1

    def merged(self, other: QuantileSketch) -> QuantileSketch:
        depth = max(len(self.levels), len(other.levels))
        levels, compactions = [], []
        for h in range(depth):
            parts = [s.levels[h] for s in (self, other) if h < len(s.levels)]
            levels.append(parts[0] if len(parts) == 1 else _sorted_union(parts))
            compactions.append(sum(s.compactions[h] for s in (self, other) if h < len(s.levels)))
        sketch = QuantileSketch(levels, compactions, self.variance + other.variance)
        sketch._compress()
        return sketch

    def order_statistics(self, positions: np.ndarray) -> np.ndarray:
        """(dims, len(positions)): the item standing at each 0-based position of the sorted
        values (the i-th smallest value itself while the sketch is exact)."""
        items, cumulative = self._sorted()
        if cumulative is None:
            return items[:, positions]
        at = np.stack([np.searchsorted(row, positions, side="right") for row in cumulative])
        return np.take_along_axis(items, at, axis=1)

    def _sorted(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Items sorted per dimension and their cumulative weights (None while exact), made
        once: the sketch never changes."""
        if self._cache is None:
            if self.exact:
                self._cache = (self.levels[0], None)
            else:
                items = np.concatenate(self.levels, axis=1)
                weights = np.concatenate(
                    [np.full(lv.shape[1], 1 << h, np.int64) for h, lv in enumerate(self.levels)]
                )
                order = np.argsort(items, axis=1, kind="stable")  # merges the sorted runs
                cumulative = np.cumsum(weights[order], axis=1)
                self._cache = (np.take_along_axis(items, order, axis=1), cumulative)
        return self._cache

    def rank_error_bound(self, failure_probability: float = 1e-9) -> float:
        """A rank error no quantile exceeds: always within the sum of 2**h over compactions;
        within sqrt(2 * variance * ln(2 / p)) except with probability p (Hoeffding, per
        quantile, taking the coins as fair). 0 while exact."""
        worst = float(sum(n << h for h, n in enumerate(self.compactions)))
        likely = math.sqrt(2 * self.variance * math.log(2 / failure_probability))
        return min(worst, likely)

    # -- compaction --------------------------------------------------------------------------
    def _capacity(self, level: int) -> int:
        """K at the top level, 2/3 of the level above below it (KLL's schedule)."""
        top = len(self.levels) - 1
        return max(MIN_CAPACITY, int(K * (2 / 3) ** (top - level)))

    def _compress(self) -> None:
        while True:
            full = [h for h, lv in enumerate(self.levels) if lv.shape[1] > self._capacity(h)]
            if not full:
                return
            self._compact(full[0])

    def _compact(self, h: int) -> None:
        items = self.levels[h]
        even = items.shape[1] - items.shape[1] % 2  # an odd item (the largest) stays here
        if h + 1 == len(self.levels):
            self.levels.append(np.empty((items.shape[0], 0)))
            self.compactions.append(0)
        promoted = items[:, _coin(h, self.compactions[h]) : even : 2]
        self.levels[h + 1] = _sorted_union([self.levels[h + 1], promoted])
        self.levels[h] = items[:, even:]
        self.compactions[h] += 1
        self.variance += float(4**h)

    # -- saving --------------------------------------------------------------------------------
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}level{h}": level for h, level in enumerate(self.levels)}
        out[prefix + "compactions"] = np.array(self.compactions, np.int64)
        out[prefix + "variance"] = np.array(self.variance)
        return out

    @classmethod
    def from_arrays(cls, arrays, prefix: str, dims: int) -> QuantileSketch:
        """Inverse of to_arrays; ValueError if the arrays do not make a sketch of `dims`."""
        compactions = [int(n) for n in arrays[prefix + "compactions"]]
        levels = [
            np.asarray(arrays[f"{prefix}level{h}"], np.float64) for h in range(len(compactions))
        ]
        if not levels or any(lv.ndim != 2 or lv.shape[0] != dims for lv in levels):
            raise ValueError(f"{prefix}: saved sketch levels are not ({dims}, n) arrays")
        return cls(levels, compactions, float(arrays[prefix + "variance"]))


def _sorted_union(parts: list[np.ndarray]) -> np.ndarray:
    """Sorted arrays (dims, m_i) as one sorted array: a stable sort merges the runs."""
    return np.sort(np.concatenate(parts, axis=1), axis=1, kind="stable")


def _coin(level: int, compaction: int) -> int:
    """0 or 1, fixed by (level, compaction): splitmix64, so a rebuilt sketch is the same one."""
    z = (level * 0x9E3779B97F4A7C15 + (compaction + 1) * 0xD1B54A32D192ED03) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) & 1
