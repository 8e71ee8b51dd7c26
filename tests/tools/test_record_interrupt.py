"""Ctrl-C ends `shmpipe record` in under a second however far behind the encoders are: the open
episode is discarded without waiting for encoders busy flushing 720p video."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from shmpipe.ipc import names
from shmpipe.tools.arguments import EXIT_INTERRUPTED
from tests.helpers.paths import REPO
from tests.helpers.processes import OUR_CONTROL_PROCESSES, stop_process

HD = "synthetic:720x1280"


@pytest.mark.soak  # ~9 s: three 720p encoders must first fall behind
def test_ctrl_c_exits_within_a_second_with_hd_encoders_behind(tmp_path):
    args = ["record", "--root", str(tmp_path / "ds"), "--fps", "30", "--task", "t",
            "--camera", f"a={HD}", "--camera", f"b={HD}", "--camera", f"c={HD}",
            "--episodes", "1", "--episode-time", "60", "--reset-time", "0",
            "--no-keyboard", "--no-live"]  # fmt: skip
    child = subprocess.Popen([sys.executable, "-m", "shmpipe", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip
    OUR_CONTROL_PROCESSES.add(child.pid)
    try:
        behind = 0
        for line in child.stderr:  # the encoders fall behind: frames wait in the backlog
            behind += "frames behind" in line
            if behind == 3:
                break
        assert behind == 3, "the encoders never fell behind"
        time.sleep(0.5)  # deeper into the backlog, segment flushes under way
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=20)
        took = time.monotonic() - sent
    finally:
        stop_process(child)
    assert code == EXIT_INTERRUPTED
    assert took < 1.0, f"exit took {took:.2f} s after Ctrl-C"
    left = [e for e in names.list_objects() if names.owner_pid(e) == child.pid]
    assert left == [], f"the recorder left shared memory behind: {left}"
    partial = [p.name for p in (tmp_path / "ds").rglob("*") if ".partial" in p.name]
    assert partial == [], f"the discarded episode left {partial}"


# `python -m shmpipe`, saying when its entry point is imported (~15 ms after the interpreter is
# up: a Ctrl-C before that is Python's own); the subcommands load after that
EARLY = ("import sys; from shmpipe.tools.cli import main; print('python is up', flush=True); "
         "sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.25, 0.45, 0.6])
def test_ctrl_c_while_the_command_starts_exits_130_without_a_traceback(tmp_path, delay):
    """`python -m shmpipe record ...` interrupted while its modules load or its sources open."""
    args = ["record", "--root", str(tmp_path / "ds"), "--fps", "30", "--task", "t",
            "--camera", "a=synthetic:64x64", "--episodes", "1", "--episode-time", "5",
            "--reset-time", "0", "--no-keyboard", "--no-live", "--backend", "thread"]  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", EARLY, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip
    OUR_CONTROL_PROCESSES.add(child.pid)
    try:
        assert child.stdout.readline().strip() == "python is up"
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=30)
        errors = child.stderr.read()
    finally:
        stop_process(child)
    assert code == EXIT_INTERRUPTED, f"exit code {code}: {errors[-2000:]}"
    assert "Traceback" not in errors, errors
