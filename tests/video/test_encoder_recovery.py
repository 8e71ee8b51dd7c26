"""One failed encode never costs an episode: the codec emitting a frame out of order (SVT-AV1
beside busy processes) or refusing a frame, mid-episode or in the final flush, and the worker
encodes again from its last durable frame; the video holds every frame fed, in order."""

from __future__ import annotations

import pytest

from shmpipe import Pipeline
from shmpipe.video.episode_writer import EpisodeVideoWriter
from tests.helpers import encoder_faults
from tests.helpers.episodes import assert_marked_episode
from tests.helpers.frames import marked_frames

CAM = "observation.images.front"
FRAMES = 240


@pytest.mark.parametrize("fault", ["misorder:120", "refuse:120", "misorder:230"])
def test_failed_encode_is_encoded_again_and_the_episode_kept(tmp_path, monkeypatch, backend,
                                                             fault, capfd, caplog):  # fmt: skip
    monkeypatch.setattr(EpisodeVideoWriter, "_mux", EpisodeVideoWriter._mux)  # restored after
    monkeypatch.setattr(EpisodeVideoWriter, "encode", EpisodeVideoWriter.encode)
    if backend == "process":
        encoder_faults.in_workers(monkeypatch, tmp_path, fault)
    else:
        encoder_faults.install(fault)
    frames = marked_frames(30, 64, 96)
    with Pipeline(tmp_path / "ds", fps=30, cameras={CAM: (64, 96, 3)}) as pipe:
        for i in range(FRAMES):
            pipe.add_frame({CAM: frames[i % 30]}, task="t")
        result = pipe.finish_episode()
    said = caplog.text + capfd.readouterr().err  # a worker thread logs here, a process to stderr
    assert "encoding again from frame" in said, "the fault never fired"
    assert_marked_episode(result, CAM, frames, FRAMES)
