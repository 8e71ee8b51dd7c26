"""LeRobot 0.4.4 loads a dataset recorded with capture times as before: LeRobotDataset returns the
usual items (plus the capture-time scalars), a DataLoader batches them, its policies do not take
them for inputs, and the raw rows hold the very times add_frame was given.

Marked `lerobot` (CI runs it in a LeRobot venv, .ci/lerobot_venv.sh); skipped without LeRobot
unless LEROBOT_REQUIRED=1.
"""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe import Pipeline
from shmpipe.dataset import capture_times
from tests.helpers.lerobot import import_lerobot

pytestmark = pytest.mark.lerobot
H, W = 48, 64
CAMS = {"observation.images.front": (H, W, 3), "observation.images.wrist": (H, W, 3)}
FEATURES = {"observation.state": (6,), "action": (6,)}
FRAMES = 12


def given_time(camera_number: int, k: int) -> float:
    return 1_761_000_000.0 + k / 30 + 0.0031 * camera_number + (2.0 if k >= 6 else 0.0)


@pytest.fixture(scope="module")
def lerobot_dataset_class():
    return import_lerobot("lerobot.datasets.lerobot_dataset").LeRobotDataset


def test_lerobot_loads_a_dataset_with_capture_times(tmp_path, lerobot_dataset_class, monkeypatch):
    import torch

    try:  # LeRobot 0.5 and later
        from lerobot.utils.feature_utils import dataset_to_policy_features
    except ImportError:  # LeRobot 0.4
        from lerobot.datasets.utils import dataset_to_policy_features

    monkeypatch.setenv("SHMPIPE_BACKEND", "thread")
    root = tmp_path / "with-times"
    with Pipeline(root, 30, CAMS, FEATURES, capture_times=True) as pipe:
        for k in range(FRAMES):
            frame = {name: np.full(shape, 10 * k + 20, np.uint8) for name, shape in CAMS.items()}
            frame.update({name: np.full(s, k, np.float32) for name, s in FEATURES.items()})
            times = {c: given_time(i, k) for i, c in enumerate(CAMS)}
            pipe.add_frame(frame, task="pick", capture_times=times)
        pipe.finish_episode()

    ds = lerobot_dataset_class("local/capture_times", root=root, video_backend="pyav")
    assert ds.num_frames == FRAMES and ds.num_episodes == 1
    item = ds[7]
    for name in CAMS:
        assert item[name].shape == (3, H, W)
        assert float(item[name].mean()) == pytest.approx((10 * 7 + 20) / 255, abs=0.02)
    assert item["observation.state"].tolist() == [7.0] * 6
    assert item["timestamp"].item() == pytest.approx(7 / 30)
    assert item["task"] == "pick"
    rows = ds.hf_dataset.with_format(None)
    for i, camera in enumerate(CAMS):  # the raw rows: exactly the floats given (float64)
        assert list(rows[capture_times.column(camera)]) == [given_time(i, k) for k in range(FRAMES)]
        assert capture_times.column(camera) in item
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["observation.images.front"].shape == (4, 3, H, W)
    assert sorted(dataset_to_policy_features(ds.meta.features)) == sorted([*CAMS, *FEATURES])
