"""Processes the tests start or stop: recorder children (ours to judge for leaks), stopped
workers, and the shared memory a process owns."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from shmpipe.ipc import names

OUR_CONTROL_PROCESSES: set[int] = set()  # recorder children started by tests


def leaked() -> list[str]:
    """shmpipe objects in /dev/shm owned by this test process or by a control process a test
    started. (Objects of unrelated processes, e.g. a benchmark running beside the tests, are
    not this run's to judge.)"""
    ours = OUR_CONTROL_PROCESSES | {os.getpid()}
    return [e for e in names.list_objects() if names.owner_pid(e) in ours]


def own_objects(pid: int | None = None) -> list[str]:
    pid = os.getpid() if pid is None else pid
    return [e for e in names.list_objects() if names.owner_pid(e) == pid]


def start_recorder(argv: list[str], **popen) -> tuple[subprocess.Popen, dict]:
    """Start a recorder child (ours to judge for leaks) and read its first JSON line."""
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             **popen)  # fmt: skip
    OUR_CONTROL_PROCESSES.add(child.pid)
    line = child.stdout.readline()
    if not line:
        stop_process(child)
        pytest.fail(f"recorder {argv[-2:]} failed: {child.stderr.read()[-3000:]}")
    return child, json.loads(line)


def run_child(argv: list[str], timeout: float) -> dict:
    """Run a child to its end (ours to judge for leaks); the JSON of its last line. A child
    that hangs or dies of a signal (SIGBUS: no Python exception) fails the test."""
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    OUR_CONTROL_PROCESSES.add(child.pid)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(child)
        out, err = child.communicate()
        pytest.fail(f"{Path(argv[-1]).name} hung (a call stalled?): {err[-2000:]}")
    finally:
        stop_process(child)
    if child.returncode < 0:
        died = signal.Signals(-child.returncode).name
        pytest.fail(f"the child died of {died} with no Python exception: {err[-2000:]}")
    assert child.returncode == 0, f"child failed ({child.returncode}): {err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


def run_root(*argv: str) -> None:
    """Run a system command (mount, mkfs, fsfreeze) that must succeed within a minute."""
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.communicate(timeout=10)
    except (subprocess.TimeoutExpired, ValueError):
        pass


def resume(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def kill_if_alive(pid: int) -> None:
    if names.pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def unshare_works(*args: str) -> str | None:
    """None if `unshare ARGS true` runs here, else why not."""
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe = subprocess.run(["unshare", *args, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare {' '.join(args)} fails here: {probe.stderr.strip()}"
    return None
