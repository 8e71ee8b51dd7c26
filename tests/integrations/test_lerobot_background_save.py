"""The LeRobot drop-in's save_episode hands the episode over (finish_episode(wait=False)): meta
counts it at once, as LeRobot's own meta does after save_episode, while it still commits; a
commit that fails is raised by the next save_episode and the later episode takes its index."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from shmpipe.dataset import layout
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.errors import DatasetError
from shmpipe.integrations.lerobot import LeRobotRecorder
from shmpipe.tools.verify import verify_dataset

FEATURES = {
    "observation.images.front": {"dtype": "video", "shape": (48, 64, 3),
                                 "names": ["height", "width", "channels"]},
    "observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
}  # fmt: skip


def add_frames(recorder: LeRobotRecorder, n: int, task: str = "patrol") -> None:
    for i in range(n):
        image, state = np.full((48, 64, 3), i * 7 % 250, np.uint8), np.zeros(2, np.float32)
        recorder.add_frame({"observation.images.front": image, "observation.state": state,
                            "task": task})  # fmt: skip


def on_disk(root) -> int:
    return json.loads((root / layout.INFO_PATH).read_text())["total_episodes"]


def test_meta_counts_a_saved_episode_while_it_still_commits(tmp_path, monkeypatch):
    release, real = threading.Event(), DatasetWriter.commit_staged

    def held_commit(self, staged, started=None):
        release.wait(30)  # the episode stays committing until the test has looked
        return real(self, staged, started)

    monkeypatch.setattr(DatasetWriter, "commit_staged", held_commit)
    root = tmp_path / "ds"
    with LeRobotRecorder.create("me/background", 30, FEATURES, root=root) as recorder:
        add_frames(recorder, 12, task="first")
        recorder.save_episode()
        counted = (recorder.num_episodes, recorder.num_frames, recorder.meta.total_tasks,
                   recorder.meta.info["total_episodes"], on_disk(root))  # fmt: skip
        release.set()
        assert recorder.last_episode.num_frames == 12  # waits for the commit
        assert (recorder.num_episodes, on_disk(root)) == (1, 1)
    assert counted == (1, 12, 1, 1, 0)


def test_a_failed_background_commit_is_raised_by_the_next_save_episode(tmp_path, monkeypatch):
    real, calls = DatasetWriter.commit_staged, []

    def failing_first(self, staged, started=None):
        calls.append(staged.episode_index)
        if len(calls) == 1:
            raise DatasetError("injected: the disk refused info.json")
        return real(self, staged, started)

    monkeypatch.setattr(DatasetWriter, "commit_staged", failing_first)
    root = tmp_path / "ds"
    with LeRobotRecorder.create("me/background", 30, FEATURES, root=root) as recorder:
        add_frames(recorder, 10)
        recorder.save_episode()
        recorder.pipeline._committer.wait_all()
        add_frames(recorder, 7)
        with pytest.raises(DatasetError, match="injected"):
            recorder.save_episode()  # this episode was handed over all the same
        recorder.finalize()
        assert (recorder.num_episodes, recorder.num_frames) == (1, 7)
        assert [(index, frames) for index, frames, _ in recorder.saved] == [(0, 7)]
    report = verify_dataset(root)
    assert report.ok and report.episodes == 1, report.text()
