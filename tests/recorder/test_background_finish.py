"""finish_episode(wait=False): the episode commits in the background, in order, while the next
one records; close() waits for every commit; a failed commit loses that episode alone and says
so; a SIGKILL before the commit leaves a dataset that verifies with its committed episodes."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time

import numpy as np
import pytest

from shmpipe import Pipeline
from shmpipe.dataset import layout
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.errors import DatasetError, UsageError
from shmpipe.tools.verify import verify_dataset
from tests.helpers.episodes import assert_flat_episode
from tests.helpers.frames import flat_frame, value_of
from tests.helpers.media import decode_video
from tests.helpers.oracles import exact_image_stats
from tests.helpers.paths import CHILDREN
from tests.helpers.processes import start_recorder, stop_process

CAMERAS = {"front": (96, 128, 3), "wrist": (96, 128, 3)}
FEATURES = {"observation.state": (2,)}
LENGTHS = (40, 25, 33)


def record(pipe, first: int, n: int, task: str = "t") -> list[int]:
    """Add n flat frames (values first..first+n-1, unpaced); their grey levels."""
    for k in range(first, first + n):
        pipe.add_frame(flat_frame(CAMERAS, k, FEATURES), task=task)
    return [value_of(k) for k in range(first, first + n)]


def assert_verified(root, episodes: int) -> None:
    report = verify_dataset(root)
    assert report.ok, report.text()
    assert report.episodes == episodes


def test_wait_false_then_close_commits_every_episode_whole_and_in_order(tmp_path):
    handles, values = [], []
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, features=FEATURES,
                  control_priority=None) as pipe:  # fmt: skip
        first = 0
        for n in LENGTHS:
            values.append(record(pipe, first, n, task=f"task {first}"))
            handles.append(pipe.finish_episode(wait=False))
            first += n
        assert pipe.next_episode_index == len(LENGTHS)
        assert [h.episode_index for h in handles] == [0, 1, 2]
    assert all(h.done() for h in handles), "close() returned before every commit"
    results = [h.result(timeout=0) for h in handles]
    assert [r.episode_index for r in results] == [0, 1, 2]
    for result, vals in zip(results, values, strict=True):
        assert_flat_episode(result, vals)
        frames = [np.full(CAMERAS["front"], v, np.uint8) for v in vals]
        for key, expected in exact_image_stats(frames).items():  # no frame of the next take
            got = result.stats["front"][key]
            np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=f"episode {vals[0]} {key}")
    assert_verified(tmp_path, len(LENGTHS))
    info = json.loads((tmp_path / layout.INFO_PATH).read_text())
    assert info["total_frames"] == sum(LENGTHS) and info["total_tasks"] == len(LENGTHS)


def test_wait_true_after_wait_false_commits_both_in_order(tmp_path):
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, features=FEATURES,
                  control_priority=None) as pipe:  # fmt: skip
        first = record(pipe, 0, 20)
        handle = pipe.finish_episode(wait=False)
        second = record(pipe, 20, 12)
        result = pipe.finish_episode()
        assert handle.done(), "wait=True returned before the earlier episode committed"
        assert (handle.result().episode_index, result.episode_index) == (0, 1)
        assert pipe.status().commits_pending == 0
    assert_flat_episode(handle.result(), first)
    assert_flat_episode(result, second)
    assert_verified(tmp_path, 2)


@pytest.mark.parametrize("worker", ["front", "stats"])
def test_a_worker_killed_during_a_background_finish_loses_nothing(tmp_path, worker):
    """The worker dies while it still has the finished episode to do and the next one's frames
    arrive: its replacement is told both takes and both episodes come out whole."""
    big = {"front": (240, 320, 3), "wrist": (240, 320, 3)}
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (240, 320, 3), np.uint8) for _ in range(4)]

    def add(pipe, k):
        image = noise[k % 4].copy()
        image[:32, :32] = value_of(k)
        pipe.add_frame({"front": image, "wrist": image, **flat_frame({}, k, FEATURES)}, task="t")

    with Pipeline(tmp_path, fps=30, cameras=big, features=FEATURES, backend="process",
                  control_priority=None) as pipe:  # fmt: skip
        for k in range(60):  # unpaced: the encoders are behind at the finish
            add(pipe, k)
        handle = pipe.finish_episode(wait=False)
        status = pipe.status()
        pid = status.stats.worker_pid if worker == "stats" else status.cameras[worker].worker_pid
        assert not handle.done()
        os.kill(pid, signal.SIGKILL)
        for k in range(60, 90):
            add(pipe, k)
            time.sleep(1 / 30)
        second = pipe.finish_episode(wait=False)
    results = [handle.result(), second.result()]
    assert sum(r.worker_restarts for r in results) >= 1
    assert [r.num_frames for r in results] == [60, 30]
    for result, first in zip(results, (0, 60), strict=True):
        for name in big:
            decoded, _ = decode_video(result.videos[name][0])
            marks = [int(f[:32, :32].mean().round()) for f in decoded]
            expected = [value_of(k) for k in range(first, first + result.num_frames)]
            assert np.abs(np.array(marks) - expected).max() <= 8, f"{name}: frames out of place"
    assert_verified(tmp_path, 2)


def test_a_failed_background_commit_discards_that_episode_alone(tmp_path, monkeypatch, caplog):
    real = DatasetWriter.commit_staged
    calls = []

    def commit_staged(self, staged, started=None):
        calls.append(staged.episode_index)
        if len(calls) == 2:
            raise DatasetError("injected: the disk refused info.json")
        return real(self, staged, started)

    monkeypatch.setattr(DatasetWriter, "commit_staged", commit_staged)
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, features=FEATURES,
                  control_priority=None) as pipe:  # fmt: skip
        first = record(pipe, 0, 20)
        ok = pipe.finish_episode(wait=False)
        record(pipe, 20, 15)
        failing = pipe.finish_episode(wait=False)
        third = record(pipe, 35, 18)
        later = pipe.finish_episode(wait=False)
        with caplog.at_level(logging.ERROR, logger="shmpipe"):
            with pytest.raises(DatasetError, match="injected"):
                failing.result(timeout=60)
        assert later.result(timeout=60).episode_index == 1, "indices must stay consecutive"
        assert "could not be committed" in caplog.text
        failures = pipe.status().commit_failures
        assert len(failures) == 1 and "episode 1 (15 frames)" in failures[0]
        assert pipe.next_episode_index == 2
        fourth = record(pipe, 53, 10)  # the pipeline records on
        last = pipe.finish_episode()
        assert pipe.next_episode_index == 3
        record(pipe, 63, 5)
        assert pipe.finish_episode(wait=False).result().episode_index == 3
    assert (ok.result().episode_index, last.episode_index) == (0, 2)
    assert_flat_episode(ok.result(), first)
    assert_flat_episode(later.result(), third)
    assert_flat_episode(last, fourth)
    assert_verified(tmp_path, 4)
    assert not list(tmp_path.rglob("*.partial*")), "the failed episode left files"


def test_cancel_while_a_commit_is_pending_keeps_the_pending_episode(tmp_path):
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, features=FEATURES,
                  control_priority=None) as pipe:  # fmt: skip
        first = record(pipe, 0, 30)
        handle = pipe.finish_episode(wait=False)
        record(pipe, 30, 10, task="dropped")
        pipe.cancel_episode()
        second = record(pipe, 40, 12)
        result = pipe.finish_episode()
    assert (handle.result().episode_index, result.episode_index) == (0, 1)
    assert_flat_episode(handle.result(), first)
    assert_flat_episode(result, second)
    assert_verified(tmp_path, 2)


def test_a_finish_handle_answers_like_a_future(tmp_path):
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, features=FEATURES,
                  control_priority=None) as pipe:  # fmt: skip
        record(pipe, 0, 10)
        handle = pipe.finish_episode(wait=False)
        seen = []
        handle.add_done_callback(lambda h: seen.append(h.episode_index))
        assert handle.result(timeout=60).num_frames == 10
        assert handle.done() and handle.exception() is None and seen == [0]
        with pytest.raises(UsageError, match="no frames"):
            pipe.finish_episode(wait=False)


def test_sigkill_between_a_background_finish_and_its_commit_leaves_a_verified_dataset(tmp_path):
    root = tmp_path / "ds"
    child, line = start_recorder([sys.executable, str(CHILDREN / "background_finish_child.py"),
                                  str(root)])  # fmt: skip
    try:
        os.kill(child.pid, signal.SIGKILL)
    finally:
        stop_process(child)
    assert line == {"handed": 1, "done": False}
    report = verify_dataset(root)
    assert report.ok, report.text()
    assert report.episodes in (1, 2)  # episode 1 was committing; if it made it, it is whole
    with Pipeline(root, fps=30, cameras={"front": (240, 320, 3), "wrist": (240, 320, 3)},
                  features=FEATURES, control_priority=None) as pipe:  # fmt: skip
        assert pipe.next_episode_index == report.episodes  # the leftovers are gone
    assert not list(root.rglob("*.partial*"))
    for episode, frames in list(enumerate((30, 90)))[: report.episodes]:
        for camera in ("front", "wrist"):
            decoded, _ = decode_video(layout.video_path(root, camera, episode))
            assert len(decoded) == frames, f"episode {episode} {camera}: {len(decoded)} frames"
