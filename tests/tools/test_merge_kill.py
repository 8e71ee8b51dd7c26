"""A merge SIGKILLed at random moments leaves OUT absent or whole; run again, it says it
resumes and ends with the same dataset (stats.json byte for byte) as a merge never killed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shmpipe.tools.merge import merge
from shmpipe.tools.merge.merger import MARKER
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.paths import REPO, needs_reference
from tests.tools.merge_sources import make_sources

pytestmark = needs_reference
KILLS = 5


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    return make_sources(tmp_path_factory.mktemp("sources"))


def run_merge(out: Path, sources: list[Path]) -> subprocess.Popen:
    command = [sys.executable, "-m", "shmpipe", "merge", str(out), *map(str, sources)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def test_sigkill_leaves_out_absent_or_whole_and_a_rerun_resumes(sources, tmp_path):
    clean = tmp_path / "clean"
    merge(clean, sources)
    timed = tmp_path / "timed"
    child = run_merge(timed, sources)
    started = time.monotonic()
    copying = wait_for_staging(child, timed)
    assert child.wait(timeout=120) == 0, child.stderr.read()
    whole = time.monotonic() - started
    rng = random.Random(28)
    for k in range(KILLS):
        out = tmp_path / f"out{k}"
        staging = out.with_name(f".{out.name}.merging")
        child = run_merge(out, sources)
        # half the kills anywhere in the run, half while the sources are being copied
        if k % 2 == 0 and wait_for_staging(child, out) is not None:
            time.sleep(rng.uniform(0, whole - copying))
        else:
            time.sleep(rng.uniform(0.05, whole))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        if out.exists():  # killed after the rename: the dataset is whole
            report = verify_dataset(out)
            assert report.ok, f"kill {k}: {report.text()}"
            continue
        interrupted = (staging / MARKER).is_file()
        again = run_merge(out, sources)
        assert again.wait(timeout=120) == 0, again.stderr.read()
        said = "resuming an interrupted merge" in again.stderr.read()
        assert said == interrupted, f"kill {k}: left {staging}: {interrupted}, said so: {said}"
        report = verify_dataset(out, decode=True)
        assert report.ok, f"kill {k}, rerun: {report.text()}"
        stats = (out / "meta/stats.json").read_bytes()
        assert stats == (clean / "meta/stats.json").read_bytes(), f"kill {k}: stats differ"
        assert not staging.exists()


def wait_for_staging(child: subprocess.Popen, out: Path) -> float | None:
    """Seconds until the merge's folder appeared (None: the child ended first)."""
    started = time.monotonic()
    while not (out.with_name(f".{out.name}.merging") / MARKER).exists():
        if child.poll() is not None:
            return None
        time.sleep(0.005)
    return time.monotonic() - started
