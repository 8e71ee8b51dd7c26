"""Capture times through `shmpipe record`'s session and `shmpipe verify --timing`: the stored
columns hold exactly what the sources reported, and a 2 s gap and a slow camera are named."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from shmpipe import Pipeline
from shmpipe.dataset import capture_times
from shmpipe.tools.arguments import EXIT_OK, EXIT_PROBLEMS
from shmpipe.tools.cli import main
from shmpipe.tools.record.session import Plan, RecordSession
from tests.helpers.sources import KnownTimesFileSource, write_clip

FPS, FRAMES, GAP_AT = 30, 30, 20
FRONT, WRIST = "observation.images.front", "observation.images.wrist"
START = 1_761_000_000.0


def front_time(k: int) -> float:  # steady, but no frame for 2 s before frame GAP_AT
    return START + k / FPS + (2.0 if k >= GAP_AT else 0.0) + 1e-6 * k


def wrist_time(k: int) -> float:  # 4 ms after the front camera
    return START + k / FPS + 0.004


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One episode recorded by RecordSession from two file sources with known times."""
    folder = tmp_path_factory.mktemp("timing")
    clip = write_clip(folder / "clip.mp4", 12, 48, 64)
    sources = {FRONT: KnownTimesFileSource(clip, FPS, front_time),
               WRIST: KnownTimesFileSource(clip, FPS, wrist_time)}  # fmt: skip
    plan = Plan(FPS, "t", 1, FRAMES / FPS, 0.0)
    root = folder / "ds"
    pipe = Pipeline(root, FPS, {k: s.shape for k, s in sources.items()}, backend="thread",
                    capture_times=True)  # fmt: skip
    with pipe:
        result = RecordSession(pipe, sources, plan).run()
    for source in sources.values():
        source.close()
    return root, result.saved[0]


def test_the_columns_hold_the_times_the_sources_reported(recorded):
    root, _ = recorded
    stored = capture_times.read_episode(root / "data/chunk-000/file-000.parquet", [FRONT, WRIST])
    assert stored[FRONT].tolist() == [front_time(k) for k in range(FRAMES)]
    assert stored[WRIST].tolist() == [wrist_time(k) for k in range(FRAMES)]


def test_the_summary_reports_rate_gap_and_skew_from_the_stored_times(recorded):
    _, summary = recorded
    front, wrist = summary.cameras[FRONT], summary.cameras[WRIST]
    assert front.worst_gap_s == pytest.approx(2.0 + 1 / FPS, abs=1e-5)
    assert front.capture_fps == pytest.approx((FRAMES - 1) / (front_time(29) - front_time(0)))
    assert front.warning is not None and "worst gap 2033 ms before frame 20" in front.warning
    assert wrist.capture_fps == pytest.approx(FPS) and wrist.warning is None
    assert wrist.repeats == front.repeats == 0
    assert summary.worst_skew_ms == pytest.approx(2000 - 4 + 1e-3 * 29, abs=1e-3)  # frame 29
    assert "worst gap 2033 ms" in summary.line()


def test_verify_timing_names_the_gap_and_flags_the_slow_camera(recorded, capsys):
    root, _ = recorded
    capsys.readouterr()
    assert main(["verify", str(root)]) == EXIT_OK  # without --timing: the dataset is whole
    capsys.readouterr()
    assert main(["verify", "--timing", str(root)]) == EXIT_PROBLEMS
    out = capsys.readouterr().out
    assert f"camera {FRONT}: captured at 9.78 fps (stamped 30), 0 repeats of 30, worst gap " \
           "2033.3 ms before frame 20" in out  # fmt: skip
    assert f"episode 0, camera {FRONT}, capture times: captured at 9.78 fps, below" in out
    assert f"camera {WRIST}: captured at 30.00 fps" in out
    assert "skew between cameras: worst 1996.0 ms at frame 29" in out
    assert main(["verify", "--timing", "--timing-tolerance", "0.7", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    gap = report["timing"]["episodes"]["0"]["cameras"][FRONT]
    assert (gap["worst_gap_frame"], gap["repeats"]) == (20, 0)
    assert np.isclose(gap["worst_gap_s"], 2 + 1 / FPS, atol=1e-5)


def test_verify_timing_on_a_dataset_without_capture_times_says_so(tmp_path, capsys):
    with Pipeline(tmp_path, FPS, {FRONT: (16, 16, 3)}, backend="thread") as pipe:
        pipe.add_frame({FRONT: np.zeros((16, 16, 3), np.uint8)}, "t")
        pipe.finish_episode()
    capsys.readouterr()
    assert main(["verify", "--timing", str(tmp_path)]) == EXIT_OK
    assert "timing: no capture times stored" in capsys.readouterr().out


# `shmpipe record` in a process whose wall clock steps back 2 h after 15 frames were captured
CLOCK_STEP_CHILD = """
import sys, time
real, calls = time.time, []
def stepping():
    if "sources" in sys._getframe(1).f_code.co_filename:
        calls.append(1)
    return real() - (7200.0 if len(calls) > 15 else 0.0)
time.time = stepping
from shmpipe.tools.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_wall_clock_step_shows_in_no_capture_time_nor_summary(tmp_path):
    import subprocess
    import sys

    from tests.helpers.paths import REPO

    root = tmp_path / "ds"
    args = ["record", "--root", str(root), "--fps", "30", "--task", "t", "--camera",
            "a=synthetic:48x64", "--episodes", "1", "--episode-time", "1.5", "--reset-time",
            "0", "--no-keyboard", "--no-live", "--backend", "thread"]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", CLOCK_STEP_CHILD, *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO)  # fmt: skip
    assert done.returncode == EXIT_OK, done.stderr
    summary = next(line for line in done.stdout.splitlines() if line.startswith("episode 0"))
    rate, gap = re.search(r" a ([\d.]+) fps \(\d+ distinct, worst gap (\d+) ms\)", summary).groups()
    assert float(rate) > 20 and int(gap) < 500, summary
    camera = "observation.images.a"
    times = capture_times.read_episode(next((root / "data").rglob("*.parquet")), [camera])[camera]
    steps = np.diff(np.asarray(times))
    assert steps.min() > 0 and steps.max() < 0.5, f"steps from {steps.min()} to {steps.max()}"
    # a loaded machine may capture a little under 30 fps: only the step is the point here
    assert main(["verify", "--timing", "--timing-tolerance", "0.5", str(root)]) == EXIT_OK
