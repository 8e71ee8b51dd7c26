"""A power cut right after finish_episode returned keeps the episode: the disk image as it stood
at that moment (an ext4 file system on a loop device, copied block for block) opens, verifies
and resumes with every episode that finish_episode returned."""

import shutil
import uuid

import numpy as np

from shmpipe import Pipeline
from shmpipe.tools.verify import verify_dataset
from tests.helpers.processes import run_root

CAMERAS = {"observation.images.front": (48, 64, 3), "observation.images.wrist": (48, 64, 3)}


def _power_cut_copy(image, into):
    """The blocks the file system has handed to its disk now: what a power cut would leave."""
    shutil.copyfile(image, into)


def _frame(k: int) -> dict:
    image = np.full((48, 64, 3), (k * 37) % 224 + 16, np.uint8)
    return {**dict.fromkeys(CAMERAS, image), "observation.state": np.full(3, k, np.float32)}


def test_an_episode_survives_a_power_cut_right_after_finish(ext4_disk, tmp_path):
    mount, image = ext4_disk
    root = mount / "ds"
    cuts = []
    with Pipeline(root, fps=30, cameras=CAMERAS, features={"observation.state": (3,)},
                  control_priority=None) as pipe:  # fmt: skip
        for episode in range(2):
            for k in range(30):
                pipe.add_frame(_frame(k), task=f"task {episode}")
            pipe.finish_episode()
            cut = tmp_path / f"cut{episode}.img"
            _power_cut_copy(image, cut)  # at once: no sync, no unmount
            cuts.append((episode + 1, cut))
    for episodes, cut in cuts:
        after = tmp_path / f"after-{uuid.uuid4().hex[:6]}"
        after.mkdir()
        run_root("mount", "-o", "loop", str(cut), str(after))  # replays the journal, as a reboot
        try:
            report = verify_dataset(after / "ds")
            assert report.ok, f"after a cut at {episodes} episodes: {report.text()}"
            assert report.episodes == episodes
            features = {"observation.state": (3,)}
            with Pipeline(after / "ds", fps=30, cameras=CAMERAS, features=features,
                          control_priority=None) as pipe:  # fmt: skip
                assert pipe.next_episode_index == episodes
                for k in range(10):
                    pipe.add_frame(_frame(k), task="after the cut")
                assert pipe.finish_episode().episode_index == episodes
            assert verify_dataset(after / "ds").ok
        finally:
            run_root("umount", "-l", str(after))
