"""What a reader can see of a dataset being recorded is always a committed dataset (issue 25,
item 3): a LeRobot-style reader (info.json, then the globs) looping while episodes commit finds
no inconsistent snapshot, and a recorder SIGKILLed at random points of its commit leaves nothing
a reader sees or verify flags; the next start() removes the staged files."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest

from shmpipe.tools.verify import verify_dataset
from tests.helpers.globbing_reader import snapshot
from tests.helpers.paths import CHILDREN, REPO
from tests.helpers.processes import OUR_CONTROL_PROCESSES, stop_process

CHILD = CHILDREN / "committing_recorder.py"
CAMERAS = 2


def _recorder(root, episodes: int) -> subprocess.Popen:
    """The recorder child, running this repository's shmpipe."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(CHILD), str(root), str(episodes)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    OUR_CONTROL_PROCESSES.add(child.pid)
    return child


def _line(child) -> dict:
    line = child.stdout.readline()
    if not line:
        stop_process(child)
        pytest.fail(f"the recorder child ended: {child.stderr.read()[-3000:]}")
    return json.loads(line)


def read_during_commits(root, stable_reads: int, commits: int, timeout_s: float) -> tuple:
    """(stable looks, looks, commits seen, inconsistent looks) of a reader looping while a
    recorder commits episodes, until it took `stable_reads` stable looks across `commits`."""
    child = _recorder(root, -1)
    try:
        opened = _line(child)
        assert opened["opened"] == 0
        while _line(child).get("committed") is None:  # info.json exists from here on
            pass
        first = json.loads((root / "meta/info.json").read_text())["total_episodes"]
        stable = looks = seen = 0
        bad: list = []
        deadline = time.monotonic() + timeout_s
        while (stable < stable_reads or seen < commits) and time.monotonic() < deadline:
            look = snapshot(root, CAMERAS)
            looks += 1
            if look.stable:
                stable += 1
                seen = look.episodes - first
                if look.problems:
                    bad.append(look.problems)
        assert child.poll() is None, f"the recorder failed: {child.stderr.read()[-3000:]}"
    finally:
        stop_process(child)  # SIGKILL
    last = _recorder(root, 0)  # a start() removes the killed recorder's shared memory
    assert _line(last)["temporaries"] == []
    assert last.wait(60) == 0, last.stderr.read()[-3000:]
    return stable, looks, seen, bad


def kill_during_commits(root, kills: int, seed: int) -> list[str]:
    """SIGKILL a recorder `kills` times at random points of a commit (between `finishing` and
    a little past its usual end); after each, what readers and verify see. Returns problems."""
    rng = random.Random(seed)
    problems: list[str] = []
    durations = [0.2]
    for kill in range(kills + 1):
        child = _recorder(root, -1 if kill < kills else 0)
        try:
            opened = _line(child)
            if opened["temporaries"]:
                problems.append(f"after kill {kill - 1}: start() left {opened['temporaries']}")
            if kill == kills:  # the last start: it removes the last kill's shared memory too
                assert child.wait(60) == 0, child.stderr.read()[-3000:]
                break
            for _ in range(rng.randrange(1, 3)):  # some commits complete
                _line(child)
                started = time.monotonic()
                _line(child)
                durations.append(time.monotonic() - started)
            assert "finishing" in _line(child)
            time.sleep(rng.uniform(0, 1.2 * max(durations[-5:])))
        finally:
            stop_process(child)  # SIGKILL
        look = snapshot(root, CAMERAS)
        if look.problems:
            problems.append(f"kill {kill}: a reader sees {look.problems}")
        report = verify_dataset(root)
        if not report.ok:
            problems.append(f"kill {kill}: verify: {report.text()[:600]}")
    return problems


def test_a_reader_never_sees_an_uncommitted_episode(tmp_path):
    stable, looks, commits, bad = read_during_commits(tmp_path / "ds", 300, 12, 120)
    assert stable >= 300 and commits >= 12, f"{stable} stable looks of {looks}, {commits} commits"
    assert bad == [], f"{len(bad)} of {stable} stable looks were inconsistent, e.g. {bad[:3]}"


def test_sigkill_in_the_commit_leaves_no_visible_trace(tmp_path):
    problems = kill_during_commits(tmp_path / "ds", 4, seed=1)
    assert problems == []


@pytest.mark.soak
@pytest.mark.timeout(2400)
def test_soak_readers_and_kills_during_commits(tmp_path):
    """The repro's figures: >= 3,000 stable looks across >= 100 commits, then 40 kills in the
    commit window."""
    stable, looks, commits, bad = read_during_commits(tmp_path / "read", 3000, 100, 1200)
    print(f"\nreader: {len(bad)} inconsistent of {stable} stable looks ({looks} looks, "
          f"{commits} commits), e.g. {bad[:2]}", flush=True)
    problems = kill_during_commits(tmp_path / "kill", 40, seed=25)
    print(f"kills: {len(problems)} of 40 left a trace, e.g. {problems[:3]}")
    assert stable >= 3000 and commits >= 100
    assert bad == []
    assert problems == []
