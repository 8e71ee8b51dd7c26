"""start() knows what this machine encodes: cameras that cannot keep up hear so before the first
frame, with the estimate; cameras that fit hear nothing, and status() carries the headroom."""

import logging

import numpy as np

from shmpipe import Pipeline
from shmpipe.video import capacity


def _start(tmp_path, caplog, cameras, backend="thread"):
    caplog.set_level(logging.WARNING, logger="shmpipe")
    pipe = Pipeline(tmp_path / "ds", fps=30, cameras=cameras, backend=backend,
                    ring_budget_bytes=1, control_priority=None)  # fmt: skip
    pipe.start()
    warnings = [r.getMessage() for r in caplog.records if "may not keep up" in r.getMessage()]
    return pipe, warnings


def test_eight_720p_cameras_on_this_machine_are_warned_about_at_start(tmp_path, caplog):
    # 8 x 30 fps of 720p needs ~11 cores' worth of SVT-AV1 here (~45 ms CPU a frame): far past
    # the 2..8 cores a test machine has, however loaded, so the verdict cannot flip
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
