"""A root is resolved once, at construction: a relative root stays where it was when the
process changes its working directory after start() (both backends)."""

from __future__ import annotations

import os
from pathlib import Path

from shmpipe import Pipeline
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.frames import flat_frame

CAMS = {"observation.images.front": (32, 32, 3)}


def test_chdir_after_start_keeps_recording_into_the_root_given(tmp_path, monkeypatch, backend):
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(first)
    with Pipeline("rec", fps=30, cameras=CAMS) as pipe:
        os.chdir(elsewhere)
        for _ in range(2):
            for k in range(20):
                pipe.add_frame(flat_frame(CAMS, k), task="t")
            result = pipe.finish_episode()
            assert Path(result.data).is_relative_to(first / "rec"), result.data
    assert list(elsewhere.iterdir()) == [], "files appeared under the new working directory"
    report = verify_dataset(first / "rec")
    assert report.ok, report.problems
    assert (report.episodes, report.frames) == (2, 40)
