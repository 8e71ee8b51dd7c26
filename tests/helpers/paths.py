"""Where things are: the repository, the child scripts, LeRobot's reference dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
# Scripts the tests run as subprocesses (never next to a folder named `workers`).
CHILDREN = TESTS / "children"
# A small dataset LeRobot 0.4.4 itself wrote, kept in the repository (188 KiB).
REFERENCE = TESTS / "data" / "lerobot-v3-example"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "meta" / "info.json").exists(),
    reason=f"LeRobot's reference dataset is not at {REFERENCE} (it is part of the repository)",
)
