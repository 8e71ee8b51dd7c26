"""A camera narrower than 32 pixels on LeRobot's PyAV pin (15: SVT-AV1 3.0, which dies of
SIGFPE on such frames) is refused at start() naming the camera; newer PyAV records it. Either
way the recording process survives: the child would die of the signal before the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import pytest

from tests.helpers.media import decode_video

pytestmark = pytest.mark.lerobot

CHILD = """
import json, sys
import numpy as np
from shmpipe import Pipeline
root, width = sys.argv[1], int(sys.argv[2])
try:
    with Pipeline(root, fps=30, cameras={"wrist": (16, width, 3)}, backend="thread") as pipe:
        for k in range(4):
            pipe.add_frame({"wrist": np.full((16, width, 3), 60 * k, np.uint8)}, task="t")
        video = pipe.finish_episode().videos["wrist"][0]
    print(json.dumps({"recorded": str(video)}))
except Exception as exc:
    print(json.dumps({"refused": f"{type(exc).__name__}: {exc}"}))
"""


@pytest.mark.parametrize("width", [16, 24])
def test_a_narrow_camera_is_refused_by_name_or_recorded_and_never_kills_the_process(
    tmp_path, width
):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "ds"), str(width)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, f"the recorder died ({proc.returncode}): {proc.stderr[-1500:]}"
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    if int(av.__version__.split(".")[0]) < 16:
        assert "wrist" in outcome.get("refused", "") and "32" in outcome["refused"], outcome
        assert not (tmp_path / "ds" / "meta" / "info.json").exists()
    else:
        assert len(decode_video(outcome["recorded"])[0]) == 4, outcome
