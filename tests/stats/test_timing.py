"""Capture-time figures: rate over distinct frames, repeats, the worst gap and the skew, exact."""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe.stats.timing import camera_timing, episode_timing


def test_a_steady_camera_is_at_its_rate_with_no_repeats():
    t = 1_761_000_000.0 + np.arange(90) / 30
    timing = camera_timing(t)
    assert timing.capture_fps == pytest.approx(30.0)
    assert timing.repeats == 0 and timing.frames == timing.distinct == 90
    assert timing.worst_gap_s == pytest.approx(1 / 30, abs=1e-6)  # epoch seconds: ~0.2 µs steps
    assert not timing.is_slow(30)


def test_repeats_and_a_two_second_gap_are_counted_and_named():
    t = np.arange(60) / 30
    t[1::2] = t[::2]  # every frame twice: a 15 fps camera stamped at 30
    t[40:] += 2.0  # and no frame for 2 s before row 40
    timing = camera_timing(t)
    assert timing.repeats == 30 and timing.distinct == 30
    assert timing.worst_gap_frame == 40
    assert timing.worst_gap_s == pytest.approx(2.0 + 2 / 30)
    assert timing.capture_fps == pytest.approx(29 / (t[-1] - t[0]))
    assert timing.is_slow(30) and "worst gap 2066.7 ms before frame 40" in timing.line(30)


def test_skew_is_the_worst_row_between_cameras():
    base = np.arange(10) / 30
    late = base + 0.002
    late[6] += 0.010
    timing = episode_timing({"a": base, "b": late, "c": base + 0.001})
    assert timing.worst_skew_frame == 6
    assert timing.worst_skew_s == pytest.approx(0.012)
    assert timing.mean_skew_s == pytest.approx(0.002 + 0.010 / 10)


def test_one_frame_is_never_slow():
    timing = camera_timing(np.array([5.0]))
    assert timing.capture_fps == 0.0 and not timing.is_slow(30)
