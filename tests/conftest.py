"""Fixtures every test gets: both backends, and the /dev/shm leak check (autouse). Shared helper
code lives in tests/helpers/."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from shmpipe.ipc import names
from tests.helpers.hostile import record_small
from tests.helpers.paths import REPO
from tests.helpers.processes import leaked, run_root

BACKENDS = ["process", "thread"]
# The recorder injects no path into its workers (recorder/worker_package.py): child scripts and
# the workers they start must import this checkout, not a shmpipe installed elsewhere.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
# A shell starting pytest in the background (`pytest &`, no job control) ignores SIGINT, and an
# ignored signal stays ignored in every child: Ctrl-C tests' recorders would never see it. The
# default handler here is reset to SIG_DFL by exec, where Python raises KeyboardInterrupt again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def main_thread_scheduling_kept():
    """A test that opens SVT-AV1 in pytest's own thread (as root) gets that thread raised to
    SCHED_FIFO 99 by the codec; put it back, so the tests after it start from a normal thread."""
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    yield
    if (os.sched_getscheduler(0), os.sched_getparam(0)) != before:
        os.sched_setscheduler(0, *before)


@pytest.fixture(autouse=True)
def no_shared_memory_left():
    """Every test must leave no shmpipe segment or semaphore behind (after a short grace for
    workers that clean up after a killed owner)."""
    yield
    deadline = time.monotonic() + 3.0
    left = leaked()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = leaked()
    assert left == [], f"shmpipe objects left in /dev/shm: {left}"


@pytest.fixture
def shm_name():
    """what -> a name for a shared object a test makes by hand, under an owner lock held for
    the test: start() in another process (test runs side by side) sweeps only the objects of
    owners that are gone."""
    token = names.new_token()
    lock = names.OwnerLock(os.getpid(), token)
    yield lambda what: names.object_name(os.getpid(), token, what)
    lock.release()


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv("SHMPIPE_BACKEND", request.param)
    return request.param


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"this machine forbids mounting a small tmpfs: {proc.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def ext4_disk(tmp_path):
    """(mount point, image file) of a fresh 128 MiB ext4 file system on a loop device."""
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        pytest.skip("needs root and mkfs.ext4 to mount a loop device")
    image, mount = tmp_path / "disk.img", tmp_path / "disk"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(128 * 1024 * 1024)
    run_root("mkfs.ext4", "-q", "-F", str(image))
    try:
        run_root("mount", "-o", "loop", str(image), str(mount))
    except subprocess.CalledProcessError as error:
        pytest.skip(f"cannot mount a loop device here: {error.stderr.decode().strip()}")
    yield mount, image
    subprocess.run(["fsfreeze", "-u", str(mount)], capture_output=True)  # never left frozen
    run_root("umount", "-l", str(mount))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """A whole two-episode dataset (tests.helpers.hostile.record_small), recorded once."""
    return record_small(tmp_path_factory.mktemp("small") / "ds")


@pytest.fixture
def hostile_root(small_dataset, tmp_path) -> Path:
    """A copy of small_dataset for a test to damage."""
    return Path(shutil.copytree(small_dataset, tmp_path / "ds", symlinks=True))
