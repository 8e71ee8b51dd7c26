"""LeRobot for the tests marked `lerobot`: its module, or a skip (a failure if LEROBOT_REQUIRED=1,
as in CI's LeRobot venv, .ci/lerobot_venv.sh)."""

from __future__ import annotations

import importlib
import os

import pytest


def import_lerobot(module: str):
    required = os.environ.get("LEROBOT_REQUIRED") == "1"
    try:
        return importlib.import_module(module)
    except ImportError as error:
        (pytest.fail if required else pytest.skip)(f"LeRobot does not import here: {error}")
