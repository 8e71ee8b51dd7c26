"""A cgroup memory limit (a container's `memory.max`) sizes the rings and the backlog: what
cannot fit is refused by start() naming the limit, before anything is written; what fits gets a
backlog allowance under the limit (it was an eighth of the host's RAM), so frames spill to disk
before the kernel kills the recorder."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.cgroups import cgroup
from tests.helpers.paths import REPO
from tests.helpers.processes import OUR_CONTROL_PROCESSES, stop_process

CHILD = str(REPO / "tests" / "children" / "memory_limit_recorder.py")
MIB = 1024 * 1024


def run_limited(group, limit_mib: int, *args: str) -> dict:
    limit_file = "memory.max" if (group / "memory.max").exists() else "memory.limit_in_bytes"
    (group / limit_file).write_text(str(limit_mib * MIB))
    procs = str(group / "cgroup.procs")

    def join_group() -> None:  # in the child, before it runs anything
        with open(procs, "w") as f:
            f.write("0")

    child = subprocess.Popen([sys.executable, CHILD, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO,
                             preexec_fn=join_group)  # fmt: skip
    OUR_CONTROL_PROCESSES.add(child.pid)
    try:
        out, err = child.communicate(timeout=120)
    finally:
        stop_process(child)
    assert child.returncode == 0, f"the child died ({child.returncode}): {err[-2000:]}"
    return json.loads(out.strip().splitlines()[-1])


def test_rings_and_workers_beyond_the_memory_limit_are_refused_naming_it(tmp_path):
    root = tmp_path / "ds"
    with cgroup("memory") as group:
        info = run_limited(group, 400, str(root), "3", "720", "1280", "0")
    assert info["outcome"] == "refused", info
    assert info["type"] == "ConfigError", info
    assert "memory limit 400 MiB" in info["message"], info["message"]
    assert not root.exists(), "start() wrote to the dataset before refusing"


def test_the_backlog_allowance_stays_under_the_memory_limit(tmp_path):
    with cgroup("memory") as group:
        info = run_limited(group, 1024, str(tmp_path / "ds"), "1", "240", "320", "30")
    assert info["outcome"] == "recorded", info
    assert info["frames"] == 30
    assert 0 < info["backlog_bytes"] < 512 * MIB, f"backlog allowance {info['backlog_bytes']}"
