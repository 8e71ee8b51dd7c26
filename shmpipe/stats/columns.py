"""Mergeable statistics of a numeric column (state, action, index columns) in bounded memory.

Count, min, max, mean and std are exact (Chan et al.'s parallel merge of mean and squared
deviations, in float64). Quantiles come from a QuantileSketch: numpy's exactly while the column
holds up to sketch.K values, a summary with a tracked rank-error bound after. Merging an episode
costs O(that episode), whatever the dataset holds.
"""

from __future__ import annotations

import numpy as np

from shmpipe.stats.quantiles import QUANTILES, linear_quantiles
from shmpipe.stats.sketch import QuantileSketch

Stats = dict[str, np.ndarray]
_MOMENTS = ("count", "mean", "m2", "low", "high")


class ColumnValues:
    """The running moments, extremes and quantile sketch of one numeric column, per dimension.

    Never changed in place: merged returns a new one, so a commit that fails keeps the old."""

    __slots__ = ("count", "mean", "m2", "low", "high", "sketch")

    def __init__(self, count: int, mean: np.ndarray, m2: np.ndarray, low: np.ndarray,
                 high: np.ndarray, sketch: QuantileSketch) -> None:  # fmt: skip
        self.count = count
        self.mean = mean
        self.m2 = m2  # sum of squared deviations from the mean, per dimension
        self.low, self.high = low, high
        self.sketch = sketch

    @property
    def dims(self) -> int:
        return self.mean.shape[0]

    @classmethod
    def empty(cls, dims: int) -> ColumnValues:
        zeros = np.zeros(dims)
        return cls(0, zeros, zeros, zeros, zeros, QuantileSketch.of(np.empty((dims, 0))))

    @classmethod
    def of(cls, rows: np.ndarray) -> ColumnValues:
        """From (frames, dims) rows."""
        x = np.asarray(rows).astype(np.float64)
        if x.shape[0] == 0:
            return cls.empty(x.shape[1])
        mean = x.mean(axis=0)
        m2 = ((x - mean) ** 2).sum(axis=0)
        return cls(x.shape[0], mean, m2, x.min(axis=0), x.max(axis=0), QuantileSketch.of(x.T))

    def merged(self, other: ColumnValues) -> ColumnValues:
        if self.count == 0:
            return other
        if other.count == 0:
            return self
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / count)
        low, high = np.minimum(self.low, other.low), np.maximum(self.high, other.high)
        return ColumnValues(count, mean, m2, low, high, self.sketch.merged(other.sketch))

    def stats(self, integer: bool = False) -> Stats:
        """LeRobot's stats per dimension; min and max as int64 for integer columns."""
        if self.count == 0:
            raise ValueError("no values")
        low, high = self.low.copy(), self.high.copy()
        if integer:
            low, high = low.astype(np.int64), high.astype(np.int64)
        stats = {
            "min": low,
            "max": high,
            "mean": self.mean.copy(),
            "std": np.sqrt(self.m2 / self.count),
            "count": np.array([self.count], np.int64),
        }
        quantiles = linear_quantiles(self.sketch.order_statistics, self.count)
        for key, column in zip(QUANTILES, quantiles.T, strict=True):
            stats[key] = column
        return stats

    # -- saving --------------------------------------------------------------------------------
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Plain arrays (for an .npz) from which from_arrays makes this column again."""
        out = {prefix + key: np.asarray(getattr(self, key)) for key in _MOMENTS}
        out.update(self.sketch.to_arrays(prefix + "sketch."))
        return out

    @classmethod
    def from_arrays(cls, arrays, prefix: str, dims: int) -> ColumnValues:
        """ValueError (or KeyError) if the arrays are not a column of `dims` dimensions."""
        count = int(arrays[prefix + "count"])
        vectors = [np.asarray(arrays[prefix + key], np.float64) for key in _MOMENTS[1:]]
        if any(v.shape != (dims,) for v in vectors):
            raise ValueError(f"{prefix}: saved moments are not of {dims} dimensions")
        sketch = QuantileSketch.from_arrays(arrays, prefix + "sketch.", dims)
        if sketch.count != count:
            raise ValueError(f"{prefix}: sketch holds {sketch.count} values, count is {count}")
        return cls(count, *vectors, sketch)
