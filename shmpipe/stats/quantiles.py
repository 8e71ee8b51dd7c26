"""numpy's 'linear' quantiles read off order statistics, shared by image and numeric stats.

Neither kind of stats keeps its values as one array to hand to np.quantile: images keep value
counts (a histogram), numeric columns keep their values sorted. Both can say what the i-th
smallest value is, and that is all numpy's method needs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
LEVELS = np.array(list(QUANTILES.values()), dtype=np.float64)


def linear_quantiles(
    order_statistics: Callable[[np.ndarray], np.ndarray], count: int
) -> np.ndarray:
    """np.quantile(values, LEVELS, method='linear') along the last axis, bit for bit.

    `order_statistics(positions)` returns the values at those 0-based positions of the sorted
    values, shape (..., len(positions)); `count` is how many values there are.
    """
    virtual = (count - 1) * LEVELS
    lower = np.floor(virtual)
    weight = virtual - lower
    at_end = virtual >= count - 1
    lower_index = np.where(at_end, count - 1, lower).astype(np.intp)
    upper_index = np.where(at_end, count - 1, lower + 1).astype(np.intp)
    below, above = order_statistics(lower_index), order_statistics(upper_index)
    span = above - below
    # numpy's _lerp: the same two formulas on either side of weight 0.5
    return np.where(weight >= 0.5, above - span * (1 - weight), below + span * weight)
