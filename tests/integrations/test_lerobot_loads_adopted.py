"""LeRobot 0.4.x loads a dataset its own writer made and shmpipe then appended to: every episode,
old and new, every row, and frames through LeRobot's own decoder at the right times.

Marked `lerobot` (not in the default run): CI runs it in a LeRobot venv (.ci/lerobot_venv.sh).
"""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe import Pipeline
from tests.helpers.frames import smooth_frame
from tests.helpers.lerobot import import_lerobot
from tests.helpers.paths import REFERENCE, needs_reference

pytestmark = [pytest.mark.lerobot, needs_reference]
CAMERAS = {f"observation.images.cam{i}": (96, 128, 3) for i in range(2)}
FEATURES = {"observation.state": (6,), "action": (6,)}
NEW_LENGTHS = (20, 25)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def test_lerobot_loads_a_dataset_it_wrote_and_shmpipe_appended_to(tmp_path):
    datasets = import_lerobot("lerobot.datasets.lerobot_dataset")
    root = shutil.copytree(REFERENCE, tmp_path / "adopted")
    with Pipeline(root, fps=30, cameras=CAMERAS, features=FEATURES, backend="thread") as pipe:
        for episode, length in enumerate(NEW_LENGTHS):
            for i in range(length):
                frame = {c: smooth_frame(i + 40 * episode, 96, 128, phase=n)
                         for n, c in enumerate(CAMERAS)}  # fmt: skip
                state = np.full(6, 100 * episode + i, np.float32)
                pipe.add_frame({**frame, "observation.state": state, "action": -state},
                               task="synthetic task")  # fmt: skip
            pipe.finish_episode()
    ds = datasets.LeRobotDataset("local/adopted", root=root, video_backend="pyav")
    assert (ds.num_episodes, ds.num_frames) == (4, 60 + sum(NEW_LENGTHS))
    rows = ds.hf_dataset.with_format(None)
    ours = pq.read_table(sorted((root / "data").rglob("*.parquet"))).to_pydict()
    np.testing.assert_array_equal(np.array(rows["observation.state"]),
                                  np.array(ours["observation.state"]))  # fmt: skip
    assert list(rows["index"]) == list(range(ds.num_frames))
    starts = [0, 30, 60, 60 + NEW_LENGTHS[0]]
    for episode, start in enumerate(starts):
        item = ds[start + 5]  # one frame of each episode through LeRobot's decoder
        assert int(item["episode_index"]) == episode
        assert int(item["frame_index"]) == 5
        for n, camera in enumerate(CAMERAS):
            assert tuple(item[camera].shape) == (3, 96, 128)
            if episode >= 2:  # ours: the frame recorded at that row
                image = (item[camera].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
                want = smooth_frame(5 + 40 * (episode - 2), 96, 128, phase=n)
                assert psnr(image, want) > 30, (episode, camera)
