"""A power cut right after finish_episode returned keeps the episode: the disk image as it stood
at that moment (an ext4 file system on a loop device, copied block for block) opens, verifies
and resumes with every episode that finish_episode returned."""

import os
import shutil
import subprocess
import uuid

import numpy as np
import pytest

from shmpipe import Pipeline
from shmpipe.tools.verify import verify_dataset

CAMERAS = {"observation.images.front": (48, 64, 3), "observation.images.wrist": (48, 64, 3)}


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


@pytest.fixture
def ext4_disk(tmp_path):
    """(mount point, image file) of a fresh 128 MiB ext4 file system on a loop device."""
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        pytest.skip("needs root and mkfs.ext4 to mount a loop device")
    image, mount = tmp_path / "disk.img", tmp_path / "disk"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(128 * 1024 * 1024)
    _run("mkfs.ext4", "-q", "-F", str(image))
    try:
        _run("mount", "-o", "loop", str(image), str(mount))
    except subprocess.CalledProcessError as error:
        pytest.skip(f"cannot mount a loop device here: {error.stderr.decode().strip()}")
    yield mount, image
    _run("umount", "-l", str(mount))


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
        _run("mount", "-o", "loop", str(cut), str(after))  # replays the journal, as a reboot
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
            _run("umount", "-l", str(after))
