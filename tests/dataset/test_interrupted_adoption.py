"""Adopting a dataset LeRobot wrote replaces its stats.json with shmpipe's exact one and adds
the shmpipe block to info.json. Killed between the two writes, the dataset must still verify;
the next open then finishes the adoption, saying plainly why it reads the dataset again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.paths import REFERENCE, REPO, needs_reference

pytestmark = needs_reference
# Adopt the dataset (DatasetWriter.open) in a process killed right after one write of it
ADOPT_AND_DIE = """
import importlib, os, signal, sys
from shmpipe.dataset.writer import DatasetWriter
where, _, name = sys.argv[2].rpartition(".")
module = importlib.import_module("shmpipe.dataset." + where)
real = getattr(module, name)
def then_die(*args, **kwargs):
    real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(module, name, then_die)
cameras = {f"observation.images.cam{i}": (96, 128, 3) for i in range(2)}
features = {"observation.state": (6,), "action": (6,)}
video = {"vcodec": "libsvtav1", "pix_fmt": "yuv420p", "g": 2, "crf": 30, "preset": 12,
         "fast_decode": 0}
DatasetWriter.open(sys.argv[1], 30, cameras, features, video)
"""


@pytest.mark.parametrize("killed_after", ["committed_meta._write_stats", "writer.write_info"])
def test_adoption_killed_between_its_writes_leaves_a_dataset_that_verifies(
    tmp_path, killed_after
):
    root = shutil.copytree(REFERENCE, tmp_path / "lerobot-written")
    done = subprocess.run([sys.executable, "-c", ADOPT_AND_DIE, str(root), killed_after],
                          capture_output=True, text=True, timeout=300, cwd=REPO)  # fmt: skip
    assert done.returncode == -9, f"the adoption was not killed: {done.stderr[-2000:]}"
    report = verify_dataset(root)
    assert report.ok, [p.line() for p in report.problems]
    reopen = ADOPT_AND_DIE.replace("setattr(", "(")  # the same open, not killed: it finishes
    done = subprocess.run([sys.executable, "-c", reopen, str(root), killed_after],
                          capture_output=True, text=True, timeout=300, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "shmpipe" in json.loads((root / "meta" / "info.json").read_text())
    report = verify_dataset(root)
    assert report.ok, [p.line() for p in report.problems]
