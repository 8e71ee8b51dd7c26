"""Histogram-based image stats must equal numpy over the same downsampled pixels."""

import numpy as np
import pytest

from shmpipe.stats.columns import ColumnValues
from shmpipe.stats.images import (
    QUANTILES,
    STAT_KEYS,
    accumulate_histograms,
    channel_histograms,
    downsample,
    downsample_factor,
    stats_from_histograms,
)
from tests.helpers.oracles import merge_histograms

TIGHT = {"rtol": 1e-12, "atol": 1e-12}


def numpy_image_stats(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Reference: numpy over every downsampled pixel of `frames`, scaled to [0, 1], per channel."""
    pixels = np.concatenate([downsample(f).reshape(-1, f.shape[2]) for f in frames])
    values = pixels.astype(np.float64) / 255
    expected = {
        "min": values.min(axis=0),
        "max": values.max(axis=0),
        "mean": values.mean(axis=0),
        "std": values.std(axis=0),
    }
    for key, level in QUANTILES.items():
        expected[key] = np.quantile(values, level, axis=0)
    expected = {key: value.reshape(-1, 1, 1) for key, value in expected.items()}
    expected["count"] = np.array([pixels.shape[0]], dtype=np.int64)
    return expected


def histogram_of(frames: list[np.ndarray]) -> np.ndarray:
    hist = np.zeros((frames[0].shape[2], 256), dtype=np.int64)
    for frame in frames:
        accumulate_histograms(frame, hist)
    return hist


def assert_stats_match(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(actual) == set(STAT_KEYS)
    for key in STAT_KEYS:
        assert actual[key].shape == expected[key].shape, key
        assert actual[key].dtype == expected[key].dtype, key
        if key == "count":
            np.testing.assert_array_equal(actual[key], expected[key])
        else:
            np.testing.assert_allclose(actual[key], expected[key], err_msg=key, **TIGHT)


def random_frames(height: int, width: int, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]


def structured_frames(height: int, width: int, n: int) -> list[np.ndarray]:
    """Gradients and a moving bright square: skewed, clumped distributions unlike uniform noise."""
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    frames = []
    for i in range(n):
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[..., 0] = (rows * 255 // max(height - 1, 1)).astype(np.uint8)
        frame[..., 1] = ((cols + 7 * i) % 64).astype(np.uint8)
        frame[..., 2] = 30
        top, left = (i * 13) % height, (i * 29) % width
        frame[top : top + height // 5, left : left + width // 5, 2] = 250
        frames.append(frame)
    return frames


@pytest.mark.parametrize(
    ("height", "width", "factor"),
    [(96, 128, 1), (299, 200, 1), (300, 100, 2), (301, 299, 2), (480, 640, 4), (720, 1280, 8)],
)
def test_downsample_factor_follows_lerobot_rule(height: int, width: int, factor: int) -> None:
    assert downsample_factor(height, width) == factor


def test_downsample_returns_strided_view_without_copy() -> None:
    frame = random_frames(480, 640, 1, seed=0)[0]
    small = downsample(frame)
    assert small.shape == (120, 160, 3)
    assert np.shares_memory(small, frame)
    assert small.base is frame
    np.testing.assert_array_equal(small, frame[::4, ::4])


def test_small_frame_is_not_downsampled() -> None:
    frame = random_frames(96, 128, 1, seed=1)[0]
    assert downsample(frame).shape == frame.shape


@pytest.mark.parametrize(("height", "width"), [(96, 128), (480, 640), (720, 1280), (301, 299)])
def test_random_frames_stats_equal_numpy_over_downsampled_pixels(height: int, width: int) -> None:
    frames = random_frames(height, width, n=4, seed=height * width)
    assert_stats_match(stats_from_histograms(histogram_of(frames)), numpy_image_stats(frames))


@pytest.mark.parametrize(("height", "width"), [(96, 128), (480, 640), (720, 1280), (301, 299)])
def test_structured_frames_stats_equal_numpy_over_downsampled_pixels(
    height: int, width: int
) -> None:
    frames = structured_frames(height, width, n=5)
    assert_stats_match(stats_from_histograms(histogram_of(frames)), numpy_image_stats(frames))


def test_quantiles_match_numpy_bit_for_bit() -> None:
    frames = structured_frames(301, 299, n=3) + random_frames(301, 299, n=2, seed=5)
    actual = stats_from_histograms(histogram_of(frames))
    expected = numpy_image_stats(frames)
    for key in QUANTILES:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


def test_count_is_downsampled_pixels_per_channel_over_all_frames() -> None:
    frames = random_frames(480, 640, n=3, seed=2)
    hist = histogram_of(frames)
    assert (hist.sum(axis=1) == 3 * 120 * 160).all()
    np.testing.assert_array_equal(stats_from_histograms(hist)["count"], [3 * 120 * 160])


def test_channel_histograms_is_one_fresh_frame_histogram() -> None:
    frame = random_frames(301, 299, 1, seed=3)[0]
    hist = channel_histograms(frame)
    assert hist.shape == (3, 256) and hist.dtype == np.int64
    small = downsample(frame)
    for channel in range(3):
        np.testing.assert_array_equal(
            hist[channel], np.bincount(small[..., channel].ravel(), minlength=256)
        )


def test_merged_episode_histograms_equal_one_pass_over_all_frames() -> None:
    episodes = [random_frames(480, 640, n=2, seed=s) for s in range(3)]
    episodes.append(structured_frames(480, 640, n=3))
    merged = merge_histograms(histogram_of(frames) for frames in episodes)
    all_frames = [frame for frames in episodes for frame in frames]
    np.testing.assert_array_equal(merged, histogram_of(all_frames))
    assert_stats_match(stats_from_histograms(merged), numpy_image_stats(all_frames))


def test_empty_histogram_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        stats_from_histograms(np.zeros((3, 256), dtype=np.int64))


def test_histogram_with_unequal_channel_counts_raises() -> None:
    hist = np.zeros((3, 256), dtype=np.int64)
    hist[0, 10] = 5
    hist[1:, 10] = 4
    with pytest.raises(ValueError, match="different numbers"):
        stats_from_histograms(hist)


def test_single_value_histogram_has_zero_spread() -> None:
    hist = np.zeros((3, 256), dtype=np.int64)
    hist[0, 0] = 7
    hist[1, 128] = 7
    hist[2, 255] = 7
    stats = stats_from_histograms(hist)
    expected_value = np.array([0.0, 128 / 255, 1.0]).reshape(3, 1, 1)
    for key in ("min", "max", "mean", *QUANTILES):
        np.testing.assert_allclose(stats[key], expected_value, err_msg=key, **TIGHT)
    np.testing.assert_array_equal(stats["std"], np.zeros((3, 1, 1)))
    np.testing.assert_array_equal(stats["count"], [7])


def test_single_pixel_histogram_gives_that_pixel_for_every_stat() -> None:
    frame = np.array([[[3, 200, 77]]], dtype=np.uint8)
    assert_stats_match(stats_from_histograms(channel_histograms(frame)), numpy_image_stats([frame]))


def test_values_concentrated_at_black_and_white_match_numpy() -> None:
    rng = np.random.default_rng(4)
    frames = [
        np.where(rng.random((480, 640, 3)) < p, 255, 0).astype(np.uint8)
        for p in (0.005, 0.5, 0.995)
    ]
    assert_stats_match(stats_from_histograms(histogram_of(frames)), numpy_image_stats(frames))


def test_huge_counts_do_not_overflow() -> None:
    """~1e10 pixels per channel: moments stay exact where int64 sums of squares would not."""
    per_bin = 10**10 // 2
    hist = np.zeros((3, 256), dtype=np.int64)
    hist[:, 0] = per_bin
    hist[:, 255] = per_bin
    stats = stats_from_histograms(hist)
    np.testing.assert_array_equal(stats["count"], [2 * per_bin])
    np.testing.assert_allclose(stats["mean"], np.full((3, 1, 1), 0.5), **TIGHT)
    np.testing.assert_allclose(stats["std"], np.full((3, 1, 1), 0.5), **TIGHT)
    np.testing.assert_array_equal(stats["q01"], np.zeros((3, 1, 1)))
    np.testing.assert_array_equal(stats["q99"], np.ones((3, 1, 1)))


def test_accumulate_rejects_non_uint8_frames() -> None:
    hist = np.zeros((3, 256), dtype=np.int64)
    with pytest.raises(ValueError, match="uint8"):
        accumulate_histograms(np.zeros((4, 4, 3), dtype=np.float32), hist)


@pytest.mark.parametrize(("frames", "dims"), [(1, 1), (7, 6), (1000, 14)])
def test_column_values_stats_equal_numpy_in_float64(frames: int, dims: int) -> None:
    rng = np.random.default_rng(frames)
    values = (rng.standard_normal((frames, dims)) * 10).astype(np.float32)
    rows = values.astype(np.float64)
    stats = ColumnValues.of(values).stats()
    assert set(stats) == set(STAT_KEYS)
    expected = {
        "min": rows.min(axis=0),
        "max": rows.max(axis=0),
        "mean": rows.mean(axis=0),
        "std": rows.std(axis=0),
    }
    expected.update({key: np.quantile(rows, q, axis=0) for key, q in QUANTILES.items()})
    for key, value in expected.items():
        assert stats[key].shape == (dims,) and stats[key].dtype == np.float64, key
        np.testing.assert_allclose(stats[key], value, err_msg=key, **TIGHT)
    for key in QUANTILES:  # the same lerp as numpy's: equal to the bit
        np.testing.assert_array_equal(stats[key], expected[key], err_msg=key)
    np.testing.assert_array_equal(stats["count"], np.array([frames], dtype=np.int64))


def test_column_values_of_zero_frames_raise() -> None:
    with pytest.raises(ValueError, match="no values"):
        ColumnValues.empty(3).stats()
