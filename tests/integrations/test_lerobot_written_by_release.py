"""Datasets as each LeRobot release writes them resume by meaning, and encoder settings on resume
follow the dataset unless the caller asks for something else (no LeRobot needed: the 0.4.4
reference dataset is rewritten the way 0.6.1's writer names things, as read in 0.6.1's files).

- 0.6.1: a camera's `is_depth_map` at the top of its info, `video.g/crf/preset/...` beside it;
  tasks.parquet's pandas index named `task`; DatasetInfo's `tools` in info.json.
- A dataset that cannot be resumed: an error naming the file and field, and the dataset left
  byte for byte as it was (no lock, no meta/shmpipe, no temporary file).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shmpipe.dataset.untrusted import DamagedDatasetError
from shmpipe.errors import ConfigError
from shmpipe.integrations.lerobot.recorder import LeRobotRecorder
from tests.helpers.frames import value_of
from tests.helpers.paths import REFERENCE, needs_reference

CAMERAS = ("observation.images.cam0", "observation.images.cam1")
TOOLS = [{"type": "function", "function": {"name": "say", "parameters": {}}}]
SMALL = {"dtype": "video", "shape": (48, 64, 3), "names": ["height", "width", "channels"]}


def lerobot_default_rgb_encoder(**changes) -> SimpleNamespace:
    """What LeRobot 0.6.1 passes as `rgb_encoder` on every resume: RGBEncoderConfig()'s fields
    (libsvtav1's preset 12 filled in by its __post_init__), with `changes` as flags set them."""
    fields = {"vcodec": "libsvtav1", "pix_fmt": "yuv420p", "g": 2, "crf": 30, "preset": 12,
              "fast_decode": 0, "video_backend": "pyav", "extra_options": {}}  # fmt: skip
    if changes.get("vcodec", "libsvtav1") != "libsvtav1":
        fields["preset"] = None  # its __post_init__ fills a preset for libsvtav1 only
    return SimpleNamespace(**{**fields, **changes})


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def as_lerobot_061_wrote_it(root: Path) -> None:
    """Rename what 0.6.1's writer names differently from 0.4.4's, in place."""
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    for name in CAMERAS:
        old = info["features"][name]["info"]
        new = {"is_depth_map": old.pop("video.is_depth_map"), **old}
        new.update({"video.g": 2, "video.crf": 30, "video.preset": 12, "video.fast_decode": 0,
                    "video.video_backend": "pyav", "video.extra_options": {}})  # fmt: skip
        info["features"][name]["info"] = new
    info["tools"] = TOOLS
    path.write_text(json.dumps(info, indent=4))
    tasks = pq.read_table(root / "meta" / "tasks.parquet")
    texts = tasks.column("__index_level_0__")
    pandas_meta = {"index_columns": ["task"], "column_indexes": [], "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
         "numpy_type": "int64", "metadata": None},
        {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
         "metadata": None}]}  # fmt: skip
    schema = pa.schema([("task_index", pa.int64()), ("task", pa.string())],
                       metadata={"pandas": json.dumps(pandas_meta)})  # fmt: skip
    pq.write_table(pa.table([tasks.column("task_index"), texts], schema=schema),
                   root / "meta" / "tasks.parquet")  # fmt: skip


def frame(k: int) -> dict:
    image = np.full((96, 128, 3), value_of(k), np.uint8)
    state = np.full(6, k, np.float32)
    return {CAMERAS[0]: image, CAMERAS[1]: image, "observation.state": state, "action": state,
            "task": "new task"}  # fmt: skip


def codec_of(root: Path, camera: str, episode: int) -> str:
    path = root / f"videos/{camera}/chunk-000/file-{episode:03d}.mp4"
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.codec.canonical_name


@needs_reference
def test_a_dataset_as_lerobot_061_writes_it_resumes_and_keeps_what_shmpipe_does_not_use(tmp_path):
    root = shutil.copytree(REFERENCE, tmp_path / "written-by-061")
    as_lerobot_061_wrote_it(root)
    rgb_encoder = lerobot_default_rgb_encoder()
    with LeRobotRecorder.resume("local/x", root=root, rgb_encoder=rgb_encoder,
                                backend="thread") as recorder:  # fmt: skip
        assert recorder.num_episodes == 2
        for k in range(5):
            recorder.add_frame(frame(k))
        recorder.save_episode()
    info = json.loads((root / "meta" / "info.json").read_text())
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 65, 2)
    assert info["tools"] == TOOLS
    assert info["features"][CAMERAS[0]]["info"]["is_depth_map"] is False
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pydict()
    assert tasks.pop("task_index") == [0, 1]
    assert list(tasks.values()) == [["synthetic task", "new task"]]  # the index, by any name
    assert codec_of(root, CAMERAS[0], 2) == "av1"


@needs_reference
@pytest.mark.parametrize("damage", ["no text column", "task_index not integers"])
def test_a_dataset_that_cannot_be_resumed_names_file_and_field_and_is_left_as_it_was(
    tmp_path, damage
):
    root = shutil.copytree(REFERENCE, tmp_path / "damaged")
    as_lerobot_061_wrote_it(root)
    tasks = root / "meta" / "tasks.parquet"
    if damage == "no text column":
        pq.write_table(pa.table({"task_index": pa.array([0], pa.int64())}), tasks)
        field = "text column"
    else:
        pq.write_table(pa.table({"task_index": ["0"], "task": ["synthetic task"]}), tasks)
        field = "task_index"
    before = digests(root)
    with pytest.raises(DamagedDatasetError) as raised:
        LeRobotRecorder.resume("local/x", root=root, backend="thread")
    message = str(raised.value)
    assert "\n" not in message and "tasks.parquet" in message and field in message, message
    assert digests(root) == before  # no lock, no meta/shmpipe, no temporary file
    assert not (root / "meta" / "shmpipe").exists()


def create_small(root: Path, rgb_encoder: object | None = None) -> None:
    features = {"observation.images.front": SMALL}
    with LeRobotRecorder.create("local/x", 30, features, root=root, rgb_encoder=rgb_encoder,
                                backend="thread") as recorder:  # fmt: skip
        for k in range(3):
            recorder.add_frame({"observation.images.front": np.full((48, 64, 3), value_of(k),
                                                                    np.uint8), "task": "t"})
        recorder.save_episode()


def test_a_resume_with_lerobots_defaults_appends_with_the_datasets_own_codec(tmp_path):
    root = tmp_path / "h264"
    create_small(root, lerobot_default_rgb_encoder(vcodec="h264"))
    assert codec_of(root, "observation.images.front", 0) == "h264"
    for given in ({"rgb_encoder": lerobot_default_rgb_encoder()}, {"vcodec": "libsvtav1"}, {},
                  {"rgb_encoder": lerobot_default_rgb_encoder(vcodec="h264")}):  # fmt: skip
        with LeRobotRecorder.resume("local/x", root=root, backend="thread", **given) as recorder:
            recorder.add_frame({"observation.images.front": np.zeros((48, 64, 3), np.uint8),
                                "task": "t"})  # fmt: skip
            recorder.save_episode()
            episode = recorder.last_episode.episode_index
        assert codec_of(root, "observation.images.front", episode) == "h264", given


@pytest.mark.parametrize("asked, named", [
    ({"crf": 20}, "crf=20 (the dataset has 30)"),
    ({"vcodec": "hevc"}, "vcodec='hevc' (the dataset has 'h264')"),
    ({"g": 10, "preset": "slow"}, "g=10 (the dataset has 2), preset='slow' (the dataset has None)"),
])  # fmt: skip
def test_a_resume_refuses_only_settings_the_caller_asked_for_that_the_dataset_lacks(
    tmp_path, asked, named
):
    root = tmp_path / "h264"
    create_small(root, lerobot_default_rgb_encoder(vcodec="h264"))
    before = digests(root)
    rgb_encoder = lerobot_default_rgb_encoder(**{"vcodec": "h264", **asked})
    with pytest.raises(ConfigError, match="resume: encoder settings") as raised:
        LeRobotRecorder.resume("local/x", root=root, rgb_encoder=rgb_encoder, backend="thread")
    assert named in str(raised.value), raised.value
    assert digests(root) == before


def test_a_depth_encoder_other_than_how_shmpipe_stores_depth_is_refused_naming_the_field(tmp_path):
    features = {"observation.images.depth": {"dtype": "video", "shape": (48, 64, 1),
                                             "names": ["height", "width", "channels"]}}  # fmt: skip
    depth_encoder = SimpleNamespace(vcodec="hevc", pix_fmt="gray12le", g=2, crf=30, preset=None,
                                    fast_decode=0, extra_options={"x265-params": "lossless=1"},
                                    depth_min=0.01, depth_max=4.0, shift=3.5, use_log=True)
    with pytest.raises(ConfigError, match=r"depth_encoder: .*depth_max=4\.0 \(shmpipe: 10\.0\)"):
        LeRobotRecorder.create("local/x", 30, features, root=tmp_path / "d",
                               depth_encoder=depth_encoder, backend="thread")  # fmt: skip
    assert not (tmp_path / "d").exists()
    depth_encoder.depth_max = 10.0  # LeRobot's defaults: recorded
    with LeRobotRecorder.create("local/x", 30, features, root=tmp_path / "d",
                                depth_encoder=depth_encoder, backend="thread") as recorder:
        recorder.add_frame({"observation.images.depth": np.full((48, 64, 1), 900, np.uint16),
                            "task": "t"})  # fmt: skip
        recorder.save_episode()
    # an RGB-only robot: LeRobot passes its default depth_encoder, whatever it is, unused
    create_small(tmp_path / "rgb")
