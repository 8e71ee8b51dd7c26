"""bench.capacity and bench.flush_settings still run, on tiny sizes, in a few seconds.

The real figures come from `python -m bench.capacity` and `python -m bench.flush_settings`;
these prove the code behind them: streams are traced and judged, the table is written, and
the look-ahead setting shmpipe adopted encodes LeRobot's options to the same bytes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import capacity_report
from bench.capacity_streams import SYSTEMS, clip_index

pytest.importorskip("skimage", reason="the bench frames need scikit-image (the bench extra)")

FPS = 30


def trace(waiting: list[int], taken: list[int]) -> dict:
    return {"t": [i / 10 for i in range(len(waiting))], "waiting": waiting, "taken": taken,
            "cpu_s": {"encoders": 1.0, "control": 0.1}}  # fmt: skip


def test_a_growing_backlog_or_a_short_rate_is_falling_behind():
    ticks = range(40)
    kept = capacity_report.judge(trace([2] * 40, [3 * t for t in ticks]), 1, FPS)
    grew = capacity_report.judge(trace([2 + t for t in ticks], [2 * t for t in ticks]), 1, FPS)
    starved = capacity_report.judge(trace([0] * 40, [2 * t for t in ticks]), 1, FPS)
    assert not kept["grows"] and kept["streams_carried"] == pytest.approx(1.0)
    assert grew["grows"] and grew["growth_fps"] == pytest.approx(10.0)
    assert starved["grows"] and starved["streams_carried"] == pytest.approx(2 / 3)


def test_capacity_is_the_most_streams_kept_up_and_the_rate_where_it_fell_behind():
    runs = {1: {"grows": False, "streams_carried": 1.0, "cpu_ms_per_frame": {"encoders": 9.0}},
            2: {"grows": False, "streams_carried": 2.0, "cpu_ms_per_frame": {"encoders": 9.5}},
            3: {"grows": True, "streams_carried": 2.6, "cpu_ms_per_frame": {}}}  # fmt: skip
    cap = capacity_report.capacity(runs)
    assert (cap["streams"], cap["fractional"], cap["limited"]) == (2, 2.6, False)
    assert cap["cpu_ms_per_frame"] == {"encoders": 9.5}
    table = capacity_report.markdown({"64x64": {"raw": cap, "thread": cap}}, FPS)
    assert "| 64x64 | thread | 2 | 2.60 | 100 % | 9.50 |" in table


def test_clips_play_forwards_and_back_without_a_cut():
    assert [clip_index(i, 3) for i in range(7)] == [0, 1, 2, 1, 0, 1, 2]


@pytest.mark.parametrize("system", ["raw", "thread"])
def test_a_paced_run_takes_every_frame_and_splits_the_cpu(system):
    clips = [np.full((4, 64, 64, 3), 100 + 10 * i, np.uint8) for i in range(4)]
    result = SYSTEMS[system](clips[:1], FPS, 12)
    assert result.taken == sorted(result.taken) and min(result.waiting) >= 0
    assert result.taken[-1] + result.waiting[-1] <= 12
    assert {"control", "encoders"} <= set(result.cpu_s)


def test_flush_settings_table_compares_with_lerobots_options(tmp_path):
    from bench import flush_settings

    args = "--cameras 1 --height 64 --width 64 --frames 8 --repeats 1 --no-pipeline".split()
    args += ["--settings", "lerobot,lookahead=0", "--out", str(tmp_path)]
    assert flush_settings.main(args) == 0
    rows = json.loads((tmp_path / "flush.json").read_text())["settings"]
    assert rows["lookahead=0"]["bytes_change"] == 0 and rows["lookahead=0"]["within_tolerance"]
    assert rows["lookahead=0"]["held"] <= rows["lerobot"]["held"]
    assert rows["lerobot"]["psnr_db"] > 20
    assert "| lookahead=0 |" in (tmp_path / "flush.md").read_text()
