"""Fixtures for the micro-benchmarks in bench/ (run them with `pytest bench/ --benchmark-only`).

The project's pytest settings collect only tests/, so these never run in the normal test
command; naming bench/ on the command line is what selects them.
"""

from __future__ import annotations

import os

import pytest

from shmpipe.ipc import names


def own_shared_memory() -> list[str]:
    """shmpipe objects in /dev/shm created by this process."""
    return [e for e in names.list_objects() if names.owner_pid(e) == os.getpid()]


@pytest.fixture(scope="session", autouse=True)
def no_shared_memory_left():
    """Every pipeline and ring the benchmarks made must be gone from /dev/shm at the end."""
    yield
    left = own_shared_memory()
    assert left == [], f"the benchmarks left shmpipe objects in /dev/shm: {left}"
