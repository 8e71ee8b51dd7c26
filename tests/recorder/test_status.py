"""status() figures are right on their first call: rates are measured from the episode's start."""

import time

import numpy as np
import pytest

from shmpipe import Pipeline


def test_first_status_call_reports_the_input_rate_of_the_episode(tmp_path):
    camera = "observation.images.front"
    image = np.zeros((48, 64, 3), np.uint8)
    with Pipeline(tmp_path / "ds", fps=30, cameras={camera: (48, 64, 3)},
                  features={"action": (2,)}, control_priority=None) as pipe:  # fmt: skip
        next_tick = time.perf_counter()
        for _ in range(30):  # one second at 30 Hz, no status() call in between
            pipe.add_frame({camera: image, "action": np.zeros(2, np.float32)}, task="t")
            next_tick += 1 / 30
            time.sleep(max(0.0, next_tick - time.perf_counter()))
        status = pipe.status().cameras[camera]
        pipe.finish_episode()
    assert status.input_fps == pytest.approx(30, rel=0.25), status
    assert status.finish_wait_s != float("inf"), status
    # a tiny camera's encoder keeps up: the frame or two it holds do not read as falling behind
    assert status.encode_fps == pytest.approx(status.input_fps, rel=0.25), status
