"""push_to_hub while an episode records, as lerobot-rollout's sentry (and DAgger) push in a
background thread every N episodes: the upload takes every file of the saved episodes and none
of the open episode's temporaries (an encoder's `file-NNN.mp4.partial...` segments), so the
Hub never holds a half-written file. huggingface_hub is replaced by a stand-in that selects the
folder's files as `upload_folder` does (huggingface_hub.utils.filter_repo_objects: fnmatchcase,
`*` crosses `/`, a pattern ending in `/` matches the whole folder)."""

from __future__ import annotations

import sys
import time
import types
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np

from shmpipe.dataset import layout
from shmpipe.integrations.lerobot import LeRobotRecorder

FEATURES = {
    "observation.images.front": {"dtype": "video", "shape": (48, 64, 3),
                                 "names": ["height", "width", "channels"]},
    "observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
}  # fmt: skip


def selected(root: Path, allow, ignore) -> list[str]:
    def patterns(given):
        given = [given] if isinstance(given, str) else list(given or [])
        return [p + "*" if p.endswith("/") else p for p in given]

    allow, ignore = patterns(allow), patterns(ignore)
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return [p for p in paths
            if (not allow or any(fnmatchcase(p, a) for a in allow))
            and not any(fnmatchcase(p, i) for i in ignore)]  # fmt: skip


def hub_uploading(monkeypatch) -> list[list[str]]:
    """A stand-in huggingface_hub; each upload_folder appends the files it would upload."""
    uploads = []

    class Api:
        def upload_folder(self, folder_path, allow_patterns=None, ignore_patterns=None, **_):
            uploads.append(selected(Path(folder_path), allow_patterns, ignore_patterns))

        def __getattr__(self, method):
            return lambda *args, **kwargs: None

    hub, errors = types.ModuleType("huggingface_hub"), types.ModuleType("huggingface_hub.errors")
    hub.HfApi, errors.RevisionNotFoundError = Api, type("RevisionNotFoundError", (Exception,), {})
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    monkeypatch.setitem(sys.modules, "huggingface_hub.errors", errors)
    return uploads


def add_frames(recorder: LeRobotRecorder, n: int) -> None:
    for i in range(n):
        image = np.full((48, 64, 3), i * 7 % 250, np.uint8)
        state = np.zeros(2, np.float32)
        recorder.add_frame({"observation.images.front": image, "observation.state": state,
                            "task": "patrol"})  # fmt: skip


def test_a_push_while_recording_takes_the_saved_episodes_and_no_temporary(tmp_path, monkeypatch):
    uploads = hub_uploading(monkeypatch)
    root = tmp_path / "sentry"
    with LeRobotRecorder.create("me/rollout_sentry", 30, FEATURES, root=root) as recorder:
        add_frames(recorder, 10)
        recorder.save_episode()
        add_frames(recorder, 120)  # the next episode, open
        deadline = time.monotonic() + 30
        while not any(layout.is_temporary(p.name) for p in root.rglob("*")):
            assert time.monotonic() < deadline, "no temporary file while the episode records"
            time.sleep(0.05)
        recorder.push_to_hub()
        recorder.save_episode()
    (pushed,) = uploads
    assert not [p for p in pushed if layout.is_temporary(Path(p).name)], pushed
    saved = {"meta/info.json", "data/chunk-000/file-000.parquet",
             "videos/observation.images.front/chunk-000/file-000.mp4"}  # fmt: skip
    assert saved <= set(pushed), pushed
