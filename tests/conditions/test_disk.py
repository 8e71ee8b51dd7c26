"""A full disk fails one episode loudly, naming the file, and leaves the earlier ones intact."""

from __future__ import annotations

import pytest

from shmpipe import Pipeline
from tests.helpers.frames import smooth_frame, textured_frame
from tests.helpers.media import decode_video


def test_full_disk_fails_the_episode_naming_the_file_and_keeps_earlier_ones(small_disk, backend):
    cams = {"front": (240, 320, 3)}
    root = small_disk / "rec"
    with Pipeline(root, fps=30, cameras=cams, backend=backend) as pipe:
        for i in range(10):
            pipe.add_frame({"front": smooth_frame(i, 240, 320)}, task="t")
        first = pipe.finish_episode()
        with pytest.raises(RuntimeError, match=r"file-001\.mp4.*(No space|space left)"):
            for i in range(2_000):  # random pixels: ~100 KiB a frame fills 3 MiB quickly
                pipe.add_frame({"front": textured_frame(i, 240, 320)}, task="t")
                if i % 100 == 99:
                    pipe.finish_episode()
                    pytest.fail("the disk did not fill up")
            pipe.finish_episode()
        pipe.cancel_episode()  # add_frame raised: the failed episode stays open until cancelled
        assert pipe.status().episode_index is None, "the failed episode must be closed"
        assert pipe.next_episode_index == 1
    assert len(decode_video(first.videos["front"][0])[0]) == 10
    assert not list(root.rglob("*.partial*"))
