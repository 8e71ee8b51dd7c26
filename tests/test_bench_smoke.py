"""The benchmarks in bench/ still run: a tiny scenario and one round of every micro-benchmark.

The real numbers come from `python -m bench.scenario` and `pytest bench/ --benchmark-only`;
these only prove that the code behind them works, in well under 30 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shmpipe.ipc import names

pytestmark = pytest.mark.bench  # not in the default run: CI runs them (-m bench)

pytest.importorskip("skimage", reason="the bench frames need scikit-image (the bench extra)")
pytest.importorskip("pytest_benchmark", reason="the micro-benchmarks need pytest-benchmark")

REPO = Path(__file__).resolve().parent.parent


def run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run `cmd` in the repository; fail if it leaves shmpipe objects in /dev/shm.

    The objects' owners are the command's own children, gone by now: anything new whose owner
    is dead is theirs (the leak check in conftest.py only judges this test process)."""
    before = set(names.list_objects())
    env = dict(os.environ, SVT_LOG="1")
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    deadline = time.monotonic() + 3.0
    while (left := left_by_dead_processes(before)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], f"{cmd[2]} left shmpipe objects in /dev/shm: {left}"
    return proc


def left_by_dead_processes(before: set[str]) -> list[str]:
    new = set(names.list_objects()) - before
    return sorted(e for e in new if not names.pid_alive(names.owner_pid(e)))


def test_scenario_runner_writes_results_without_dropping_frames(tmp_path):
    out = tmp_path / "out"
    variants = ["process", "before", "raw"]
    cmd = [sys.executable, "-m", "bench.scenario", "--cameras", "1", "--height", "96"]
    cmd += ["--width", "128", "--fps", "30", "--seconds", "1", "--variants", ",".join(variants)]
    proc = run(cmd + ["--out", str(out)], timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    results = json.loads((out / "results.json").read_text())
    assert sorted(results) == sorted(variants)
    for name, result in results.items():
        assert "error" not in result, f"{name}: {result.get('error')}"
        assert result["frames_decoded"] == {"observation.images.cam0": 30}, name
        assert set(result["frames_dropped"].values()) == {0}, name
        assert {"finish_s", "encode", "rss_mb", "cpu_s", "frames_digest"} <= set(result), name
    for name in ("process", "before"):
        assert {"add_frame_ms", "lateness_ms", "ticks_late"} <= set(results[name]), name
        assert results[name]["ticks"] == 30, name
    assert results["process"]["overflow_count"] == {"observation.images.cam0": 0}
    steps = results["before"]["finish_s"]["steps"]
    assert {"png_write_wait", "stats", "encode", "data", "total"} <= set(steps)
    assert len({r["frames_digest"] for r in results.values()}) == 1, "variants saw other frames"
    assert "| add_frame p50 / p99 / max (ms) |" in (out / "results.md").read_text()
    assert not list(out.glob("before/images/**/*.png")), "the before pipeline left PNGs behind"


def test_micro_benchmarks_run_one_round_each():
    cmd = [sys.executable, "-m", "pytest", "bench/", "--benchmark-disable", "-q"]
    proc = run(cmd, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-1000:]


def test_add_frame_parts_times_every_part_on_every_tick(tmp_path):
    cmd = [sys.executable, "-m", "bench.add_frame_parts", "--cameras", "2", "--height", "96"]
    cmd += ["--width", "128", "--seconds", "0.5", "--rounds", "1", "--out", str(tmp_path)]
    proc = run(cmd, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    times = json.loads((tmp_path / "parts.json").read_text())
    assert list(times) == ["add_frame", "signals deferred", "ring publishes", "empty call"]
    assert {len(v) for v in times.values()} == {15}, "a part missed ticks"
    assert all(t > 0 for values in times.values() for t in values)


def test_rolling_bench_keeps_the_window_and_loses_no_frame(tmp_path):
    out = tmp_path / "rolling.json"
    cmd = [sys.executable, "-m", "bench.rolling", "--cameras", "1", "--height", "96", "--width"]
    cmd += ["128", "--preroll", "1", "--roll", "2", "--live", "1", "--out", str(out)]
    proc = run(cmd, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["kept_frames"] == 60, "keep at frame 60 of a 30-frame window: from 30, +30 live"
    assert figures["frames_lost"] == {"observation.images.cam0": 0}
    assert figures["window_mb_at_keep"] > 0 and figures["keep_tick_ms"] is not None
    assert "MB/min per camera" in proc.stdout


def test_rollout_bench_runs_the_strategies_loops_and_counts_every_frame(tmp_path):
    out = tmp_path / "rollout.json"
    cmd = [sys.executable, "-m", "bench.rollout", "--cameras", "1", "--height", "96", "--width"]
    cmd += ["128", "--strategies", "sentry,highlight", "--repeats", "1", "--episode-s", "0.5"]
    cmd += ["--episodes", "2", "--ring-s", "0.5", "--live-s", "0.5", "--out", str(out)]
    proc = run(cmd, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = json.loads(out.read_text())["runs"]
    sentry, highlight = runs["sentry/shmpipe"][0], runs["highlight/shmpipe"][0]
    assert (sentry["added"], sentry["lost"], len(sentry["save_ms"])) == (30, 0, 2), sentry
    # rolling capture: keep() at 45 keeps the window's 15 frames (30..44, its 1 s segment from
    # frame 30), then the key's frame and 15 live, the last one saved; no raw ring in RAM
    assert (highlight["added"], highlight["lost"], highlight["ring_mb"]) == (31, 0, 0), highlight
    assert highlight["flush_ms"] > 0 and "| highlight | shmpipe |" in proc.stdout
