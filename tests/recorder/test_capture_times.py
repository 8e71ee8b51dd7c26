"""Capture times: add_frame's camera -> seconds is stored exactly, per camera, in float64 columns
declared in info.json (loaned frames too); off by default, refused when off, checked when on."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe import ConfigError, FrameError, Pipeline
from shmpipe.dataset import capture_times
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.frames import flat_frame

CAMS = {"observation.images.front": (32, 48, 3), "observation.images.wrist": (32, 48, 3)}
FEATURES = {"observation.state": (2,)}
FRONT, WRIST = CAMS


def known_times(k: int) -> dict[str, float]:
    """Epoch-like seconds that float32 could not hold: microseconds apart between cameras."""
    base = 1_761_000_000.0 + k / 30 + (2.0 if k >= 10 else 0.0)  # a 2 s gap at frame 10
    return {FRONT: base + 1e-6 * k, WRIST: base + 0.004}


def stored(root, episode: int) -> dict[str, np.ndarray]:
    info = json.loads((root / "meta/info.json").read_text())
    data = root / f"data/chunk-000/file-{episode:03d}.parquet"
    return capture_times.read_episode(data, capture_times.cameras_of(info))


def test_capture_times_are_stored_exactly_per_camera_loaned_frames_too(tmp_path, backend):
    n = 16
    with Pipeline(tmp_path, 30, CAMS, FEATURES, capture_times=True) as pipe:
        for k in range(n):
            frame = flat_frame(CAMS, k, FEATURES)
            if k % 2:  # every other frame of the front camera through a loan
                buf = pipe.loan(FRONT)
                buf[...] = frame[FRONT]
                frame[FRONT] = buf
            pipe.add_frame(frame, task="t", capture_times=known_times(k))
        pipe.finish_episode()
    info = json.loads((tmp_path / "meta/info.json").read_text())
    for camera in CAMS:
        column = capture_times.column(camera)
        assert info["features"][column] == {"dtype": "float64", "shape": [1], "names": None}
    assert capture_times.cameras_of(info) == list(CAMS)
    times = stored(tmp_path, 0)
    for camera in CAMS:  # exact: the very floats given
        assert times[camera].tolist() == [known_times(k)[camera] for k in range(n)]
    schema = pq.read_schema(tmp_path / "data/chunk-000/file-000.parquet")
    assert str(schema.field(capture_times.column(FRONT)).type) == "double"
    report = verify_dataset(tmp_path)
    assert report.ok, report.text()


def test_off_by_default_no_columns_and_times_refused(tmp_path):
    with Pipeline(tmp_path, 30, CAMS, FEATURES, backend="thread") as pipe:
        with pytest.raises(FrameError, match="capture_times=True"):
            pipe.add_frame(flat_frame(CAMS, 0, FEATURES), "t", capture_times=known_times(0))
        assert pipe.episode_frames == 0
        pipe.add_frame(flat_frame(CAMS, 0, FEATURES), "t")
        pipe.finish_episode()
    info = json.loads((tmp_path / "meta/info.json").read_text())
    assert not [n for n in info["features"] if n.startswith(capture_times.PREFIX)]
    assert capture_times.INFO_KEY not in info["shmpipe"]
    names = pq.read_schema(tmp_path / "data/chunk-000/file-000.parquet").names
    assert not [n for n in names if n.startswith(capture_times.PREFIX)]


@pytest.mark.parametrize(
    "given, message",
    [
        (None, "exactly"),
        ({FRONT: 1.0}, "exactly"),
        ({FRONT: 1.0, WRIST: float("nan")}, "NaN"),
        ({FRONT: 1.0, WRIST: "soon"}, "numbers"),
    ],
)
def test_missing_or_bad_capture_times_leave_the_frame_out(tmp_path, given, message):
    with Pipeline(tmp_path, 30, CAMS, FEATURES, backend="thread", capture_times=True) as pipe:
        pipe.add_frame(flat_frame(CAMS, 0, FEATURES), "t", capture_times=known_times(0))
        with pytest.raises(FrameError, match=message):
            pipe.add_frame(flat_frame(CAMS, 1, FEATURES), "t", capture_times=given)
        assert pipe.episode_frames == 1
        pipe.add_frame(flat_frame(CAMS, 1, FEATURES), "t", capture_times=known_times(1))
        pipe.finish_episode()
    assert stored(tmp_path, 0)[WRIST].tolist() == [known_times(k)[WRIST] for k in (0, 1)]


def test_resuming_keeps_the_setting_or_refuses(tmp_path):
    with Pipeline(tmp_path, 30, CAMS, FEATURES, backend="thread", capture_times=True) as pipe:
        pipe.add_frame(flat_frame(CAMS, 0, FEATURES), "t", capture_times=known_times(0))
        pipe.finish_episode()
    with pytest.raises(ConfigError, match="capture-time columns"):
        Pipeline(tmp_path, 30, CAMS, FEATURES, backend="thread").start()
    with Pipeline(tmp_path, 30, CAMS, FEATURES, backend="thread", capture_times=True) as pipe:
        pipe.add_frame(flat_frame(CAMS, 1, FEATURES), "t", capture_times=known_times(1))
        pipe.finish_episode()
    assert stored(tmp_path, 1)[FRONT].tolist() == [known_times(1)[FRONT]]
    assert verify_dataset(tmp_path).ok
