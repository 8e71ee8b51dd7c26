"""start() proves the threads, descriptors and address space a session needs, with every worker
running, and names the limit that is short (cgroup pids.max, ulimit -u, -n, -v) instead of
letting every episode fail after it; a refused start leaves no dataset behind, so the next
start with other settings is not refused as "recorded with other settings"."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shmpipe import Pipeline
from tests.helpers.cgroups import cgroup

CHILD = Path(__file__).parent.parent / "children" / "limited_recorder.py"
REPO = Path(__file__).parent.parent.parent


def run_child(root: Path, preexec=None, prefix: tuple = ()) -> dict:
    proc = subprocess.run([*prefix, sys.executable, str(CHILD), str(root)], preexec_fn=preexec,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the child printed no outcome: {proc.stderr[-2000:]}"
    return json.loads(lines[-1])


def assert_refused_naming(outcome: dict, *limits: str) -> None:
    assert outcome["outcome"] != "lost", f"start() passed, then an episode failed: {outcome}"
    if outcome["outcome"] == "refused":
        assert any(limit in outcome["message"] for limit in limits), outcome["message"]
        assert "/dev/shm" not in outcome["message"], outcome["message"]


def assert_no_dataset_and_other_settings_start(root: Path) -> None:
    assert not root.exists(), f"a refused start left {sorted(p.name for p in root.rglob('*'))}"
    with Pipeline(root, fps=15, cameras={"other": (16, 16, 3)}, control_priority=None) as pipe:
        pipe.add_frame({"other": np.zeros((16, 16, 3), np.uint8)}, task="t")
        assert pipe.finish_episode().num_frames == 1


def _limit(which: int, value: int):
    return lambda: resource.setrlimit(which, (value, value))


def test_few_descriptors_refused_at_start_naming_ulimit_n(tmp_path):
    outcome = run_child(tmp_path / "ds", _limit(resource.RLIMIT_NOFILE, 16))
    assert outcome["outcome"] == "refused" and "ulimit -n 16" in outcome["message"], outcome
    assert_no_dataset_and_other_settings_start(tmp_path / "ds")


def test_small_address_space_is_not_called_a_dev_shm_problem(tmp_path):
    outcome = run_child(tmp_path / "ds", _limit(resource.RLIMIT_AS, 700000 * 1024))
    assert outcome["outcome"] == "refused", outcome
    assert_refused_naming(outcome, "ulimit -v 700000")
    assert_no_dataset_and_other_settings_start(tmp_path / "ds")


@pytest.mark.parametrize("pids_max", [15, 25, 45])
def test_cgroup_pids_max_refused_at_start_naming_it_or_recorded(tmp_path, pids_max):
    """15 fails in the probe, 25 in the encoder worker (on 2 cores), 45 records."""
    with cgroup("pids") as group:
        (group / "pids.max").write_text(str(pids_max))
        join = lambda: (group / "cgroup.procs").write_text(str(os.getpid()))  # noqa: E731
        outcome = run_child(tmp_path / "ds", join)
    assert_refused_naming(outcome, f"pids.max {pids_max}")
    if outcome["outcome"] == "refused":
        assert_no_dataset_and_other_settings_start(tmp_path / "ds")


def test_ulimit_u_refused_at_start_or_recorded_as_non_root(tmp_path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the child as another user")
    tmp_path.chmod(0o777)
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    usable = subprocess.run([*nobody, sys.executable, "-c", "import numpy, av, shmpipe"],
                            capture_output=True, env={"PYTHONPATH": str(REPO)})  # fmt: skip
    if usable.returncode != 0:  # root is never held to ulimit -u: it takes another user
        pytest.skip(f"this Python is not usable by uid 65534: {usable.stderr[-200:]!r}")
    outcome = run_child(tmp_path / "ds", _limit(resource.RLIMIT_NPROC, 40), nobody)
    assert_refused_naming(outcome, "ulimit -u 40")


MAP_RINGS_UNDER_ULIMIT_V = """
import resource
from shmpipe.errors import SharedMemoryError
from shmpipe.recorder import sizing
from shmpipe.recorder.pipeline import Pipeline
pipe = Pipeline(ROOT, fps=30, cameras={"cam": (480, 640, 3)}, ring_slots=1100,
                ring_budget_bytes=2**40, control_priority=None)
sizing.plan_start(pipe)  # the codec probe, cached, runs before the limit: the rings meet it
size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
room = size + 600 * 2**20  # threads and files fit, 1 GB of rings does not
resource.setrlimit(resource.RLIMIT_AS, (room, room))
try:
    pipe.start()
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_rings_beyond_ulimit_v_name_it_not_dev_shm(tmp_path):
    """~1 GB of rings in 600 MiB more address space than the child has: mapping them fails
    with ENOMEM, named as ulimit -v (/dev/shm has room)."""
    code = MAP_RINGS_UNDER_ULIMIT_V.replace("ROOT", repr(str(tmp_path / "ds")))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    said = proc.stdout.strip()
    assert proc.returncode == 0, f"the child died ({proc.returncode}): {proc.stderr[-2000:]}"
    assert "ulimit -v" in said and "df -h" not in said, said or proc.stderr[-2000:]
    assert not (tmp_path / "ds").exists()
