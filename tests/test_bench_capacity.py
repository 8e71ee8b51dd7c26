"""bench.capacity and bench.flush_settings still run, on tiny sizes, in a few seconds.

The real figures come from `python -m bench.capacity` and `python -m bench.flush_settings`;
these prove the code behind them: streams are traced and judged, the table is written, and
the look-ahead setting shmpipe adopted encodes LeRobot's options to the same bytes.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bench import capacity_report
from bench.capacity_streams import SYSTEMS, clip_index

pytestmark = pytest.mark.bench  # not in the default run: CI runs them (-m bench)

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


def test_the_ceiling_search_doubles_until_behind_then_bisects():
    from bench.capacity_search import CeilingSearch

    ceiling = 11  # a machine that keeps up with 11 streams and not 12
    search, tried = CeilingSearch(max_streams=64), []
    while (n := search.next()) is not None:
        tried.append(n)
        search.record(n, grew=n > ceiling)
    assert tried == [1, 2, 4, 8, 16, 12, 10, 11]
    assert (search.kept, search.grew) == (11, 12)
    capped = CeilingSearch(max_streams=6)
    while (n := capped.next()) is not None:
        capped.record(n, grew=False)
    assert (capped.kept, capped.grew) == (6, None)  # never fell behind: reported as "6+"


def test_spread_and_cpu_at_a_common_stream_count_reach_the_table():
    def verdicts(n, carried, cpu):
        runs = [{"grows": c < n, "growth_fps": 0.0, "streams_carried": c,
                 "cpu_ms_per_frame": {"encoders": e}}
                for c, e in zip(carried, cpu, strict=True)]  # fmt: skip
        return capacity_report.verdict(runs)

    process = {1: verdicts(1, [1, 1, 1], [14.0, 13.0, 15.0]),
               2: verdicts(2, [1.7, 1.8, 1.9], [12.0, 12.0, 12.0])}  # fmt: skip
    raw = {1: verdicts(1, [1, 1, 1], [12.0, 11.0, 13.0])}
    summary = {"process": capacity_report.capacity(process), "raw": capacity_report.capacity(raw)}
    capacity_report.add_common_cpu(summary, {"process": process, "raw": raw})
    assert summary["process"]["carried_range"] == [1.7, 1.9]
    assert summary["process"]["common_streams"] == 1
    assert summary["process"]["common_cpu_ms_per_frame"]["encoders"] == 14.0
    table = capacity_report.markdown({"64x64": summary}, FPS)
    assert "| 1.70-1.90 | 14.00 (N=1) |" in table and "| 12.00 (N=1) |" in table


def test_non_root_children_run_without_cap_sys_nice(tmp_path, monkeypatch):
    import subprocess

    from bench import capacity

    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.setattr(capacity.subprocess, "run", fake_run)
    args = capacity.parse_args(["--non-root", "--out", str(tmp_path)])
    assert "error" in capacity.run_one("raw", (64, 64), 1, args)
    assert seen["cmd"][:2] == ["setpriv", "--bounding-set=-sys_nice"]
    check = ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice", "--", "python3", "-c",
             "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"]  # fmt: skip
    if os.geteuid() == 0:  # as root the flag takes the right away: the child cannot go real-time
        assert subprocess.run(check, capture_output=True).returncode != 0


def test_the_bench_runs_end_to_end_and_searches_past_its_first_counts(tmp_path):
    from bench import capacity

    args = "--systems raw --sizes 32x32 --repeats 1 --seconds 1 --clip-frames 4 --max-streams 2"
    assert capacity.main([*args.split(), "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "capacity.json").read_text())
    tried = [r["streams"] for r in report["runs"]]
    kept_one = not report["runs"][0]["verdict"]["grows"]  # a loaded machine may fall behind
    assert tried == ([1, 2] if kept_one else [1])  # kept up: doubled, up to the stop
    best = report["summary"]["32x32"]["raw"]["streams"]
    assert f"| 32x32 | raw | {best}" in (tmp_path / "capacity.md").read_text()


def test_encoder_cpu_bench_compares_the_writer_with_raw_at_the_same_bytes(capsys):
    from bench import encoder_cpu

    assert encoder_cpu.main("--streams 2 --size 32x32 --frames 4 --repeats 1".split()) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    cores = len(os.sched_getaffinity(0))
    assert [r[0].strip("| ") for r in rows] == [
        "raw (shmpipe's lp)", "writer (shmpipe's lp)", "raw lp=1",
        f"raw lp={cores} (all cores)"]  # fmt: skip
    assert all(float(r[1].split()[0]) > 0 for r in rows)
    raw_bytes = {int(r[2].strip(" |")) for r in rows if r[0].startswith("| raw")}
    assert len(raw_bytes) == 1  # SVT-AV1's lp changes no byte
