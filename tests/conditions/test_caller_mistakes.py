"""What a recording script may get wrong: add_frame from two threads at once is refused without
losing an accepted frame, and an open episode is never discarded silently.
"""

from __future__ import annotations

import logging
import re
import threading

import pytest

from shmpipe import Pipeline
from tests.helpers.episodes import assert_flat_episode
from tests.helpers.frames import flat_frame, value_of
from tests.helpers.logs import shmpipe_warnings

FPS = 30
SMALL = (48, 64, 3)


def test_add_frame_from_two_threads_raises_and_loses_no_accepted_frame(tmp_path, monkeypatch):
    """Thread B is held inside add_frame (in CameraFeed.stage) while thread A calls it: A must
    be refused, B's frame must land whole, and the episode must finish with rows == frames."""
    from shmpipe.recorder.camera_feed import CameraFeed

    cams = {"front": (96, 128, 3), "wrist": (96, 128, 3)}
    inside, release = threading.Event(), threading.Event()
    stage = CameraFeed.stage

    def held_stage(self, write):
        if threading.current_thread() is not threading.main_thread() and not inside.is_set():
            inside.set()
            release.wait(10)
        return stage(self, write)

    monkeypatch.setattr(CameraFeed, "stage", held_stage)
    failures: list[BaseException] = []

    def second_thread(pipe) -> None:
        try:
            pipe.add_frame(flat_frame(cams, 1), task="t")
        except BaseException as exc:  # reported below
            failures.append(exc)

    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="process") as pipe:
        pipe.add_frame(flat_frame(cams, 0), task="t")
        other = threading.Thread(target=second_thread, args=(pipe,))
        other.start()
        assert inside.wait(10), "the second thread never got inside add_frame"
        with pytest.raises(RuntimeError, match="thread") as refused:
            pipe.add_frame(flat_frame(cams, 2), task="t")
        release.set()
        other.join(10)
        pipe.add_frame(flat_frame(cams, 3), task="t")  # one at a time again: accepted
        result = pipe.finish_episode()
    print(f"refused with: {refused.value}")
    assert failures == [], failures
    assert_flat_episode(result, [value_of(k) for k in (0, 1, 3)])


def assert_discard_warned(warnings: list[str], episode: int, frames: int) -> None:
    matching = [
        m
        for m in warnings
        if re.search(rf"episode\D{{0,20}}\b{episode}\b", m, re.IGNORECASE)
        and re.search(rf"\b{frames}\b", m)
    ]
    assert matching, f"no warning names episode {episode} and {frames} frames: {warnings}"


def test_close_with_an_open_episode_warns_naming_the_episode_and_its_frames(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="shmpipe")
    cams = {"front": SMALL}
    pipe = Pipeline(tmp_path, fps=FPS, cameras=cams, backend="thread").start()
    try:
        for k in range(4):
            pipe.add_frame(flat_frame(cams, k), task="t")
        pipe.finish_episode()
        for k in range(7):
            pipe.add_frame(flat_frame(cams, k), task="t")
        caplog.clear()
        pipe.close()
        warnings = shmpipe_warnings(caplog)
    finally:
        pipe.close()
    print(warnings)
    assert_discard_warned(warnings, episode=1, frames=7)


def test_leaving_the_with_block_with_an_open_episode_warns(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="shmpipe")
    cams = {"front": SMALL}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="thread") as pipe:
        for k in range(9):
            pipe.add_frame(flat_frame(cams, k), task="t")
        caplog.clear()
    warnings = shmpipe_warnings(caplog)
    print(warnings)
    assert_discard_warned(warnings, episode=0, frames=9)
