"""Long commands show bars with counts and an ETA when stderr is a terminal, and nothing extra
when it is piped or with --json."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import REFERENCE, REPO, needs_reference

pytestmark = needs_reference


def run(args: list[str], terminal: bool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `python -m shmpipe ARGS`, stderr on a pseudo-terminal
    if `terminal`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120", "TERM": "xterm"}
    command = [sys.executable, "-m", "shmpipe", *args]
    if not terminal:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = child.stdout.read().decode()
    return child.wait(timeout=60), out, seen.decode(errors="replace")


@pytest.fixture
def root(tmp_path) -> Path:
    return shutil.copytree(REFERENCE, tmp_path / "ds")


@pytest.mark.parametrize("command", ["verify", "stats", "pack"])
def test_a_terminal_shows_bars_with_counts_and_eta(root, command):
    code, _, err = run([command, str(root)], terminal=True)
    assert code == 0, err
    assert "ETA" in err and "2/2" in err, err


def test_merge_shows_a_bar_on_a_terminal(root, tmp_path):
    code, _, err = run(["merge", str(tmp_path / "out"), str(root)], terminal=True)
    assert code == 0, err
    assert "copying episodes" in err and "2/2" in err and "ETA" in err, err


def test_piped_or_json_shows_nothing_extra(root):
    code, out, err = run(["stats", str(root)], terminal=False)
    assert code == 0 and err == "", err
    code, out, err = run(["verify", "--json", str(root)], terminal=True)
    assert code == 0 and err == "", err
    assert out.lstrip().startswith("{"), out
