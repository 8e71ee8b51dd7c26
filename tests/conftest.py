"""Fixtures every test gets: both backends, and the /dev/shm leak check (autouse). Shared helper
code lives in tests/helpers/."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.helpers.hostile import record_small
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


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """A whole two-episode dataset (tests.helpers.hostile.record_small), recorded once."""
    return record_small(tmp_path_factory.mktemp("small") / "ds")


@pytest.fixture
def hostile_root(small_dataset, tmp_path) -> Path:
    """A copy of small_dataset for a test to damage."""
    return Path(shutil.copytree(small_dataset, tmp_path / "ds", symlinks=True))
