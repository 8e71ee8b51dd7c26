"""A control process SIGKILLed in the middle of an episode: resuming gives the totals and the
stats.json of a clean resume, from meta/shmpipe/state.npz (no rebuild), past sketch.K values."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys

import numpy as np

from shmpipe import Pipeline
from shmpipe.dataset import layout
from shmpipe.stats.sketch import K
from tests.helpers.paths import CHILDREN
from tests.helpers.processes import run_child, start_recorder, stop_process

CHILD = CHILDREN / "growth_child.py"
EPISODES, FRAMES = 9, 240


def resumed(root) -> tuple[dict, bytes, dict]:
    """(info.json, stats.json, state.npz arrays) after start() and close() on `root`."""
    Pipeline(root, fps=30, cameras={"front": (48, 64, 3)}, features={"observation.state": (6,)},
             backend="thread").start().close()  # fmt: skip
    with np.load(root / layout.STATE_PATH) as saved:
        state = {name: saved[name] for name in saved.files}
    info = json.loads((root / layout.INFO_PATH).read_text())
    return info, (root / layout.STATS_PATH).read_bytes(), state


def test_resume_after_sigkill_mid_episode_equals_a_clean_resume(tmp_path, caplog):
    assert EPISODES * FRAMES > K
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    run_child([sys.executable, str(CHILD), str(clean), str(EPISODES), str(FRAMES), "clean"], 120)
    child, line = start_recorder(
        [sys.executable, str(CHILD), str(killed), str(EPISODES), str(FRAMES), "kill"]
    )
    assert line == {"saved": EPISODES, "open": FRAMES // 2}
    os.kill(child.pid, signal.SIGKILL)
    stop_process(child)
    assert child.returncode == -signal.SIGKILL

    with caplog.at_level(logging.WARNING, logger="shmpipe"):
        info_k, stats_k, state_k = resumed(killed)
    assert "rebuilding" not in caplog.text  # the state of the last commit was whole
    info_c, stats_c, state_c = resumed(clean)
    totals = ("total_episodes", "total_frames", "total_tasks")
    assert [info_k[k] for k in totals] == [info_c[k] for k in totals] == [9, 9 * 240, 3]
    assert stats_k == stats_c
    assert state_k.keys() == state_c.keys()
    for name in state_c:
        if name != "header":  # it names each root's own info.json
            np.testing.assert_array_equal(state_k[name], state_c[name], err_msg=name)
