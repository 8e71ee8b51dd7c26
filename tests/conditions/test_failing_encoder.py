"""An encoder that cannot open its codec or write its file is reported at once: a log line,
status(), and the next add_frame raises (the episode can then be cancelled), not at finish."""

from __future__ import annotations

import logging
import time

import pytest

from shmpipe import DatasetError, Pipeline, WorkerError
from tests.helpers.cgroups import cgroup, move
from tests.helpers.frames import smooth_frame, textured_frame
from tests.helpers.media import decode_video

CAMS = {"front": (240, 320, 3)}
REPORTED_WITHIN_S = 1.5  # the supervisor looks every 0.2 s; the encoder replies at once


def add_until_raises(pipe, frames: int, make) -> tuple[int, Exception]:
    """Paced like a robot (30 Hz); returns (frames added, what add_frame raised)."""
    for i in range(frames):
        try:
            pipe.add_frame({"front": make(i)}, task="t")
        except Exception as exc:
            return i, exc
        time.sleep(1 / 30)
    pytest.fail(f"add_frame never raised in {frames} frames")


def test_encoder_that_cannot_open_fails_the_next_add_frame_not_the_finish(tmp_path, caplog):
    with Pipeline(tmp_path / "rec", fps=30, cameras=CAMS, backend="process") as pipe:
        with cgroup("pids") as group:
            move(group, pipe.status().cameras["front"].worker_pid)
            # no thread more: SVT-AV1 cannot start its threads, avcodec_open2 fails (ENOMEM)
            (group / "pids.max").write_text((group / "pids.current").read_text())
            with caplog.at_level(logging.ERROR, logger="shmpipe"):
                added, error = add_until_raises(pipe, 60, lambda i: smooth_frame(i, 240, 320))
            assert isinstance(error, WorkerError) and not isinstance(error, DatasetError)
            assert "camera 'front'" in str(error) and "avcodec_open2" in str(error)
            assert added <= REPORTED_WITHIN_S * 30, f"reported only after {added} frames"
            assert pipe.episode_frames == added, "the frame that raised must not be added"
            assert "avcodec_open2" in pipe.status().cameras["front"].error
            assert any("cannot be saved" in r.getMessage() for r in caplog.records)
            with pytest.raises(WorkerError, match="avcodec_open2"):
                pipe.add_frame({"front": smooth_frame(0, 240, 320)}, task="t")
            pipe.cancel_episode()
            assert pipe.status().cameras["front"].error == ""
        for i in range(10):  # the limit is gone: the next episode records
            pipe.add_frame({"front": smooth_frame(i, 240, 320)}, task="t")
        result = pipe.finish_episode()
    assert result.episode_index == 0
    assert len(decode_video(result.videos["front"][0])[0]) == 10


def test_full_disk_raises_dataset_error_from_add_frame_at_once(small_disk, backend):
    with Pipeline(small_disk / "rec", fps=30, cameras=CAMS, backend=backend) as pipe:
        added, error = add_until_raises(pipe, 600, lambda i: textured_frame(i, 240, 320))
        assert isinstance(error, DatasetError), f"{type(error).__name__}: {error}"
        assert "file-000.mp4" in str(error) and "No space left" in str(error)
        assert "No space left" in pipe.status().cameras["front"].error
        assert pipe.status().episode_index == 0, "the episode stays open until cancelled"
        pipe.cancel_episode()
        assert pipe.status().episode_index is None
    assert not list((small_disk / "rec").rglob("*.partial*"))
