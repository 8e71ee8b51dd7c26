"""Image statistics for LeRobot datasets, computed while recording.

Images: each frame is downsampled (LeRobot's rule) and its per-channel value counts are added to a
(channels, 256) histogram, so the recorder never keeps pixels around. Because pixel values are
integers 0..255, the histogram holds everything needed to recover min, max, mean, std and numpy's
linear quantiles exactly. A depth camera's frames (uint16 mm) are counted as their 12-bit codes
(shmpipe.depth) in a (1, 4096) histogram; its stats are of the millimetres the codes stand
for,
unscaled (LeRobot keeps depth stats in the feature's depth_unit).
"""

from __future__ import annotations

import numpy as np

from shmpipe import depth
from shmpipe.stats.quantiles import QUANTILES, linear_quantiles

STAT_KEYS = ("min", "max", "mean", "std", "count", *QUANTILES)

HISTOGRAM_BINS = 256
PIXEL_SCALE = 255.0


def downsample_factor(height: int, width: int) -> int:
    """Stride used by LeRobot's `auto_downsample_height_width`: about 150 px on the long side."""
    longest_side = max(height, width)
    if longest_side < 300:
        return 1
    return int(longest_side / 150)


def downsample(frame_hwc: np.ndarray) -> np.ndarray:
    """Strided view `frame[::k, ::k]` of an HxWxC frame; no pixels are copied."""
    stride = downsample_factor(frame_hwc.shape[0], frame_hwc.shape[1])
    return frame_hwc[::stride, ::stride]


def accumulate_histograms(frame_hwc_uint8: np.ndarray, hist: np.ndarray) -> None:
    """Add the per-channel value counts of the downsampled frame into `hist` (C, 256) in place."""
    if frame_hwc_uint8.dtype != np.uint8 or frame_hwc_uint8.ndim != 3:
        shape, dtype = frame_hwc_uint8.shape, frame_hwc_uint8.dtype
        raise ValueError(f"expected an HxWxC uint8 frame, got {dtype} {shape}")
    channels = frame_hwc_uint8.shape[2]
    if hist.shape != (channels, HISTOGRAM_BINS):
        raise ValueError(f"histogram shape {hist.shape} does not match {channels} channels")
    small = downsample(frame_hwc_uint8)
    # One bincount per channel on uint8 beats a single bincount over channel-offset values:
    # the offset needs a wider-dtype temporary, which costs more than the two extra calls.
    for channel in range(channels):
        hist[channel] += np.bincount(small[..., channel].ravel(), minlength=HISTOGRAM_BINS)


def channel_histograms(frame_hwc_uint8: np.ndarray) -> np.ndarray:
    """Fresh (C, 256) int64 histogram of one downsampled frame."""
    hist = np.zeros((frame_hwc_uint8.shape[2], HISTOGRAM_BINS), dtype=np.int64)
    accumulate_histograms(frame_hwc_uint8, hist)
    return hist


def histogram_shape(camera_shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, bins) of a camera's histogram: (3, 256) RGB, (1, 4096) depth codes."""
    return (1, depth.BINS) if depth.is_depth(camera_shape) else (3, HISTOGRAM_BINS)


def frame_histogram(frame_hwc: np.ndarray) -> np.ndarray:
    """Fresh histogram of one downsampled ring frame: RGB uint8, or depth uint16 mm as codes."""
    if frame_hwc.dtype == np.uint8:
        return channel_histograms(frame_hwc)
    codes = depth.quantize(downsample(frame_hwc)[..., 0])
    return np.bincount(codes.ravel(), minlength=depth.BINS).reshape(1, depth.BINS)


def _histogram_quantiles(hist: np.ndarray, count: int, values, scale: float) -> np.ndarray:
    """Quantiles per channel, (C, len(QUANTILES)), reading order statistics off `hist`."""
    cumulative = np.cumsum(hist, axis=1)

    def order_statistics(positions: np.ndarray) -> np.ndarray:
        # The i-th smallest value (0-based) is the first bin whose cumulative count exceeds i.
        bins = [np.searchsorted(row, positions, side="right") for row in cumulative]
        return values[np.stack(bins)] / scale

    return linear_quantiles(order_statistics, count)


def stats_from_histograms(hist: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot image stats of the pixels counted in `hist`: (C, 256) as values scaled to
    [0, 1]; (1, 4096) depth codes as the millimetres they stand for.

    Float stats have shape (C, 1, 1); `count` is pixels per channel, shape (1,).
    """
    hist = np.asarray(hist)
    if hist.ndim != 2 or hist.shape[1] not in (HISTOGRAM_BINS, depth.BINS):
        raise ValueError(f"expected a (channels, {HISTOGRAM_BINS}) histogram, got {hist.shape}")
    if hist.shape[1] == depth.BINS:
        values, scale = depth.bin_values().astype(np.int64), 1.0
    else:
        values, scale = np.arange(HISTOGRAM_BINS), PIXEL_SCALE
    if np.any(hist < 0):
        raise ValueError("histogram has negative counts")
    counts = [int(c) for c in hist.sum(axis=1)]
    if len(set(counts)) != 1:
        raise ValueError(f"channels counted different numbers of pixels: {counts}")
    count = counts[0]
    if count == 0:
        raise ValueError("cannot compute stats from an empty histogram")

    mins, maxs, means, stds = [], [], [], []
    for row in hist:
        present = np.flatnonzero(row)
        mins.append(values[present[0]] / scale)
        maxs.append(values[present[-1]] / scale)
        # Exact integer moments (Python ints never overflow); one correctly rounded division each.
        value_counts = list(zip(values.tolist(), row.tolist(), strict=True))
        value_sum = sum(value * n for value, n in value_counts)
        square_sum = sum(value * value * n for value, n in value_counts)
        means.append(value_sum / count / scale)
        variance_times_count_sq = count * square_sum - value_sum * value_sum
        stds.append(np.sqrt(variance_times_count_sq / (count * count)) / scale)

    def per_channel(values: list[float] | np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).reshape(-1, 1, 1)

    stats = {
        "min": per_channel(mins),
        "max": per_channel(maxs),
        "mean": per_channel(means),
        "std": per_channel(stds),
        "count": np.array([count], dtype=np.int64),
    }
    quantile_values = _histogram_quantiles(hist, count, values, scale)
    for column, key in enumerate(QUANTILES):
        stats[key] = per_channel(quantile_values[:, column])
    return stats
