"""Fixtures every test gets: both backends, and the /dev/shm leak check (autouse). Shared helper
code lives in tests/helpers/."""

from __future__ import annotations

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
