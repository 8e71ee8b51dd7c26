"""Fixtures every test gets: both backends, and the /dev/shm leak check (autouse). Shared helper
code lives in tests/helpers/."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.helpers.processes import leaked

BACKENDS = ["process", "thread"]


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
