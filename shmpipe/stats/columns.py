"""Exact, mergeable statistics of a numeric column (state, action, index columns).

Dataset-level quantiles cannot be averaged from episodes' quantiles; keeping every value sorted
lets each new episode be merged in, and quantiles read off exactly as numpy computes them.
"""

from __future__ import annotations

import numpy as np

from shmpipe.stats.quantiles import QUANTILES, linear_quantiles

Stats = dict[str, np.ndarray]


class ColumnValues:
    """Every value of one numeric column so far, sorted per dimension, and its running moments.

    Merging an episode inserts its values in O(total) memory moves (no sorting of old values);
    quantiles are then read at their positions, exactly as numpy's 'linear' method computes them.
    Mean and std are merged with Chan's formula in float64.
    """

    __slots__ = ("sorted", "count", "mean", "m2")

    def __init__(self, sorted_values: np.ndarray, count: int, mean: np.ndarray, m2: np.ndarray):
        self.sorted = sorted_values  # (dims, count) float64, each row ascending
        self.count = count
        self.mean = mean
        self.m2 = m2  # sum of squared deviations from the mean, per dimension

    @classmethod
    def empty(cls, dims: int) -> ColumnValues:
        zeros = np.zeros(dims)
        return cls(np.empty((dims, 0)), 0, zeros, zeros)

    @classmethod
    def of(cls, rows: np.ndarray) -> ColumnValues:
        """From (frames, dims) rows."""
        x = np.asarray(rows).astype(np.float64)
        mean = x.mean(axis=0)
        m2 = ((x - mean) ** 2).sum(axis=0)
        return cls(np.sort(x.T, axis=1), x.shape[0], mean, m2)

    def merged(self, other: ColumnValues) -> ColumnValues:
        if self.count == 0:
            return other
        if other.count == 0:
            return self
        count = self.count + other.count
        merged = np.empty((self.sorted.shape[0], count))
        for dim, (old, new) in enumerate(zip(self.sorted, other.sorted, strict=True)):
            merged[dim] = np.insert(old, np.searchsorted(old, new, side="right"), new)
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / count)
        return ColumnValues(merged, count, mean, m2)

    def stats(self, integer: bool = False) -> Stats:
        """LeRobot's stats per dimension; min and max as int64 for integer columns."""
        if self.count == 0:
            raise ValueError("no values")
        low, high = self.sorted[:, 0], self.sorted[:, -1]
        if integer:
            low, high = low.astype(np.int64), high.astype(np.int64)
        stats = {
            "min": low,
            "max": high,
            "mean": self.mean.copy(),
            "std": np.sqrt(self.m2 / self.count),
            "count": np.array([self.count], np.int64),
        }
        quantiles = linear_quantiles(lambda positions: self.sorted[:, positions], self.count)
        for key, column in zip(QUANTILES, quantiles.T, strict=True):
            stats[key] = column
        return stats
