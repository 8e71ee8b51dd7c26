"""LeRobot loads a dataset made by rolling capture (Pipeline(preroll_s=...)): every kept row,
and through its own decoder each row's frame is the frame fed at that row (the pre-roll's first
frame at time 0 of each episode, nothing from before the window).

Marked `lerobot` (not in the default run): CI runs it in a LeRobot venv (.ci/lerobot_venv.sh).
"""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe import Pipeline
from tests.helpers.frames import marked_frames, value_of
from tests.helpers.lerobot import import_lerobot

pytestmark = pytest.mark.lerobot
FPS = 10
CAMERAS = {f"observation.images.cam{i}": (64, 96, 3) for i in range(2)}


def test_lerobot_loads_rolling_episodes_with_each_kept_frame_at_its_row(tmp_path):
    datasets = import_lerobot("lerobot.datasets.lerobot_dataset")
    root = tmp_path / "rolled"
    images = {name: marked_frames(100, 64, 96, phase=c) for c, name in enumerate(CAMERAS)}
    with Pipeline(root, fps=FPS, cameras=CAMERAS, features={"action": (2,)}, preroll_s=1.0,
                  backend="process") as pipe:  # fmt: skip
        for k in range(100):
            if k in (30, 85):
                pipe.keep()
            if k == 45:
                pipe.finish_episode()
            frame = {name: images[name][k] for name in CAMERAS}
            pipe.add_frame({**frame, "action": np.array([k, -k], np.float32)}, task="rolled")
        pipe.finish_episode()
    kept = list(range(20, 45)) + list(range(75, 100))  # see tests/recorder/test_rolling.py
    ds = datasets.LeRobotDataset("local/rolled", root=root, video_backend="pyav")
    assert (ds.num_episodes, ds.num_frames) == (2, len(kept))
    for row, k in enumerate(kept):
        item = ds[row]
        assert int(item["action"][0]) == k
        for camera in CAMERAS:
            image = (item[camera].numpy().transpose(1, 2, 0) * 255).round()
            corner = int(np.median(image[8:24, 8:24]))
            assert abs(corner - value_of(k)) <= 3, (row, camera, corner, value_of(k))
