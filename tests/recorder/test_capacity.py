"""start() knows what this machine encodes: cameras that cannot keep up hear so before the first
frame, with the estimate; cameras that fit hear nothing, and status() carries the headroom."""

import logging
import os

import numpy as np
import pytest

from shmpipe import Pipeline
from shmpipe.video import capacity


def _start(tmp_path, caplog, cameras, backend="thread"):
    caplog.set_level(logging.WARNING, logger="shmpipe")
    pipe = Pipeline(tmp_path / "ds", fps=30, cameras=cameras, backend=backend,
                    ring_budget_bytes=1, control_priority=None)  # fmt: skip
    pipe.start()
    warnings = [r.getMessage() for r in caplog.records if "may not keep up" in r.getMessage()]
    return pipe, warnings


@pytest.fixture
def two_cores():
    """This process on at most 2 cores (as the CI machine): the verdict must not depend on
    the machine the test runs on."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(before)[:2])
    yield
    os.sched_setaffinity(0, before)


def test_eight_720p_cameras_on_two_cores_are_warned_about_at_start(tmp_path, caplog, two_cores):
    # 8 x 30 fps of 720p needs ~8 cores' worth of SVT-AV1 (30-45 ms CPU a frame): 4x what 2
    # cores have, however loaded the machine is, so the verdict cannot flip
    cameras = {f"observation.images.cam{i}": (720, 1280, 3) for i in range(8)}
    pipe, warnings = _start(tmp_path, caplog, cameras)
    try:
        estimate = pipe.status().capacity
    finally:
        pipe.close()
    assert len(warnings) == 1, caplog.text
    assert "8 cameras at 30 fps may not keep up" in warnings[0]
    assert "streams of 720x1280" in warnings[0] and "ms CPU per frame" in warnings[0]
    assert not estimate.fits and estimate.load > 1.0, estimate
    assert estimate.streams["720x1280"] < 8 * capacity.MARGIN, estimate
    assert f"~{estimate.streams['720x1280']:.1f} streams of 720x1280" in warnings[0]


def test_one_small_camera_fits_without_a_warning_and_status_shows_the_headroom(tmp_path, caplog):
    camera = "observation.images.front"
    pipe, warnings = _start(tmp_path, caplog, {camera: (64, 64, 3)}, backend="process")
    try:
        pipe.add_frame({camera: np.zeros((64, 64, 3), np.uint8)}, task="t")
        status = pipe.status()
        pipe.finish_episode()
    finally:
        pipe.close()
    assert warnings == [], caplog.text
    assert status.capacity.fits and status.capacity.streams["64x64"] > 8, status.capacity
    assert 0.5 < status.headroom <= 1.0, status.capacity
    assert status.capacity.cpu_ms_per_frame["64x64"] > 0


def test_the_estimate_adds_up_every_camera_against_the_cores():
    need = capacity.estimate({"a": (480, 640, 0.010), "b": (480, 640, 0.012),
                              "c": (64, 64, 0.001)}, fps=30, cores=2)  # fmt: skip
    assert need.load == (0.010 + 0.012 + 0.001) * 30 / 2
    assert need.streams == {"480x640": 2 / (0.012 * 30), "64x64": 2 / (0.001 * 30)}
    assert need.fits and abs(need.headroom - (1 - need.load)) < 1e-12
    assert not capacity.estimate({"a": (720, 1280, 0.06)}, fps=30, cores=2).fits
