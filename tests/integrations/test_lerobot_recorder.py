"""LeRobotRecorder as lerobot-record drives it: LeRobot's features dict in, LeRobot's calls
(add_frame with "task", save_episode, clear_episode_buffer, finalize), and a dataset whose
info.json, data columns and videos match what LeRobot writes. No LeRobot import."""

from __future__ import annotations

import copy
import json
import shutil
import sys
import types
from fractions import Fraction

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe.dataset import layout
from shmpipe.errors import ConfigError, FrameError, UsageError
from shmpipe.integrations.lerobot.features import parse_features
from shmpipe.integrations.lerobot.recorder import LeRobotRecorder
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.frames import smooth_frame
from tests.helpers.paths import REFERENCE, needs_reference

# LeRobot's DEFAULT_FEATURES (lerobot.utils.constants), as a features dict of a dataset ends
INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": (1,), "names": None},
    "frame_index": {"dtype": "int64", "shape": (1,), "names": None},
    "episode_index": {"dtype": "int64", "shape": (1,), "names": None},
    "index": {"dtype": "int64", "shape": (1,), "names": None},
    "task_index": {"dtype": "int64", "shape": (1,), "names": None},
}
# so100 / so101 / koch followers: six motors, "<motor>.pos" (their observation/action features)
JOINTS = [f"{m}.pos" for m in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex",
                               "wrist_roll", "gripper")]  # fmt: skip


# lerobot-record's keyword arguments to LeRobotDataset.create / .resume (defaults of its config;
# rgb_encoder stands for RGBEncoderConfig(), read by attribute)
RGB_ENCODER = types.SimpleNamespace(
    vcodec="libsvtav1", pix_fmt="yuv420p", g=2, crf=30, preset=12, fast_decode=0,
    video_backend="pyav", extra_options={},
)  # fmt: skip
RECORD_OPTIONS = dict(batch_encoding_size=1, rgb_encoder=RGB_ENCODER, depth_encoder=object(),
                      encoder_threads=2, streaming_encoding=True, encoder_queue_maxsize=30,
                      image_writer_processes=0, image_writer_threads=8)  # fmt: skip


def arm_features(cameras: dict[str, tuple[int, int, int]]) -> dict[str, dict]:
    """What lerobot-record builds for an arm with cameras (hw_to_dataset_features for the
    action, then the observation: combine_feature_dicts keeps that order)."""
    features = {
        "action": {"dtype": "float32", "shape": (6,), "names": list(JOINTS)},
        "observation.state": {"dtype": "float32", "shape": (6,), "names": list(JOINTS)},
    }
    for name, shape in cameras.items():
        features[f"observation.images.{name}"] = {
            "dtype": "video",
            "shape": shape,
            "names": ["height", "width", "channels"],
            "info": {"is_depth_map": False},
        }
    return features


@pytest.fixture(autouse=True)
def thread_backend(monkeypatch):
    """The recorder is backend-blind: the thread backend keeps these tests fast; the reference
    test records with worker processes (Pipeline's own tests cover both backends fully)."""
    monkeypatch.setenv("SHMPIPE_BACKEND", "thread")


def reference_info() -> dict:
    return json.loads((REFERENCE / "meta" / "info.json").read_text())


def reference_features() -> dict[str, dict]:
    """The reference's features without LeRobot's index columns, as a record script gives them."""
    features = copy.deepcopy(reference_info()["features"])
    return {n: f for n, f in features.items() if n not in INDEX_FEATURES}


def frame_for(features: dict[str, dict], i: int, task: str = "pick the cube") -> dict:
    """One frame as lerobot-record's build_dataset_frame makes it, plus "task"."""
    frame: dict = {"task": task}
    for name, ft in features.items():
        if name in INDEX_FEATURES:
            continue
        if ft["dtype"] == "video":
            h, w, _ = ft["shape"]
            frame[name] = smooth_frame(i, h, w, phase=len(name))
        else:
            frame[name] = np.arange(ft["shape"][0], dtype=np.float32) + i
    return frame


def decoded_times(path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(f.pts * Fraction(f.time_base)) for f in container.decode(stream)]


def frames_per_episode(root, camera: str) -> list[int]:
    """Frames of each episode's span of its video file, found as LeRobot finds them."""
    counts = []
    for file in sorted((root / "meta" / "episodes").rglob("*.parquet")):
        for row in pq.read_table(file).to_pylist():
            key = f"videos/{camera}"
            path = root / layout.VIDEO_PATH.format(
                video_key=camera,
                chunk_index=row[f"{key}/chunk_index"],
                file_index=row[f"{key}/file_index"],
            )
            start, end = row[f"{key}/from_timestamp"], row[f"{key}/to_timestamp"]
            counts.append(sum(start - 1e-4 <= t < end - 1e-4 for t in decoded_times(path)))
    return counts


def data_table(root):
    return pq.read_table(sorted((root / "data").rglob("*.parquet")))


def fake_hub(monkeypatch) -> list:
    """A stand-in huggingface_hub whose HfApi records every call (method, args, kwargs)."""
    calls = []

    class FakeApi:
        def __getattr__(self, method):
            return lambda *args, **kwargs: calls.append((method, args, kwargs))

    hub = types.ModuleType("huggingface_hub")
    hub.HfApi = FakeApi
    errors = types.ModuleType("huggingface_hub.errors")
    errors.RevisionNotFoundError = type("RevisionNotFoundError", (Exception,), {})
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    monkeypatch.setitem(sys.modules, "huggingface_hub.errors", errors)
    return calls


@needs_reference
def test_reference_features_record_a_dataset_like_lerobots(tmp_path, monkeypatch):
    monkeypatch.setenv("SHMPIPE_BACKEND", "process")
    features = reference_features()
    root = tmp_path / "ds"
    recorder = LeRobotRecorder.create(
        "shmpipe/reference", 30, features, root=root, robot_type="synthetic"
    )
    with recorder:
        assert recorder.num_episodes == 0 and recorder.num_frames == 0 and bool(recorder)
        for i in range(15):
            recorder.add_frame(frame_for(features, i))
        recorder.save_episode()
        for i in range(5):  # re-recorded: lerobot-record's "rerecord_episode"
            recorder.add_frame(frame_for(features, 100 + i))
        assert recorder.has_pending_frames()
        recorder.clear_episode_buffer()
        assert not recorder.has_pending_frames()
        for i in range(15):
            recorder.add_frame(frame_for(features, 15 + i))
        recorder.save_episode()
        assert (recorder.num_episodes, recorder.num_frames, len(recorder)) == (2, 30, 30)
        assert recorder.meta.info["total_episodes"] == 2 and recorder.meta.info.total_frames == 30
    recorder.finalize()  # idempotent, also after the `with`

    info, ref = json.loads((root / "meta" / "info.json").read_text()), reference_info()
    assert set(info) - {"shmpipe"} == set(ref), "info.json keys differ from LeRobot's"
    for key in set(ref) - {"total_frames"}:  # 30 frames here, 60 in the reference
        assert info[key] == ref[key], f"info.json {key!r}: {info[key]!r} != LeRobot's {ref[key]!r}"
    as_loaded = {n: {**f, "shape": tuple(f["shape"])} for n, f in ref["features"].items()}
    assert recorder.features == as_loaded
    assert recorder.meta.robot_type == "synthetic" and recorder.fps == 30

    for camera in recorder.meta.video_keys:
        assert frames_per_episode(root, camera) == [15, 15], camera
    table = data_table(root)
    theirs = pq.read_schema(REFERENCE / "data/chunk-000/file-000.parquet")
    assert table.schema.remove_metadata() == theirs.remove_metadata()
    assert table["episode_index"].to_pylist() == [0] * 15 + [1] * 15
    assert table["index"].to_pylist() == list(range(30))
    assert table["frame_index"].to_pylist() == list(range(15)) * 2
    assert np.allclose(table["timestamp"].to_numpy(), [i / 30 for i in range(15)] * 2)
    assert table["task_index"].to_pylist() == [0] * 30
    state = np.array(table["observation.state"].to_pylist())
    assert np.array_equal(state[15:, 0], np.arange(15, 30)), "the cleared episode left rows"
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pylist()
    assert [t["__index_level_0__"] for t in tasks] == ["pick the cube"]


@pytest.mark.parametrize("robot, cameras", [("so100", ("front", "wrist")),
                                            ("koch", ("laptop", "phone"))])  # fmt: skip
def test_arm_features_at_480x640_become_pipeline_cameras_and_named_vectors(robot, cameras):
    features = arm_features(dict.fromkeys(cameras, (480, 640, 3)))
    parsed = parse_features({**features, **INDEX_FEATURES})  # index columns are skipped
    assert parsed.cameras == {f"observation.images.{c}": (480, 640, 3) for c in cameras}
    assert parsed.features == {"action": ((6,), "float32"), "observation.state": ((6,), "float32")}
    assert parsed.feature_names == {"action": JOINTS, "observation.state": JOINTS}
    channel_first = {"dtype": "image", "shape": (3, 480, 640), "names": ["channels", "height",
                                                                          "width"]}  # fmt: skip
    assert parse_features({"cam": channel_first}).cameras == {"cam": (480, 640, 3)}


def test_so100_recording_lands_names_and_robot_type_and_pushes_as_lerobot_does(
    tmp_path, monkeypatch
):
    features = arm_features({"front": (48, 64, 3), "wrist": (48, 64, 3)})
    recorder = LeRobotRecorder.create("me/so100", 30, root=tmp_path / "so100", robot_type="so100",
                                      features=features, use_videos=True,
                                      **RECORD_OPTIONS)  # fmt: skip
    assert recorder.writer is None  # LeRobot's VideoEncodingManager then only finalizes
    with recorder:
        for i in range(10):  # with LeRobot 0.3's optional timestamp, which must be i / fps
            recorder.add_frame({**frame_for(recorder.features, i), "timestamp": i / 30})
        recorder.save_episode()
        assert recorder.last_episode.num_frames == 10
    info = json.loads((tmp_path / "so100" / "meta" / "info.json").read_text())
    assert info["robot_type"] == "so100" and info["fps"] == 30
    assert info["features"]["action"]["names"] == JOINTS
    assert info["features"]["observation.state"]["names"] == JOINTS
    # lerobot-record's sanity_check_dataset_robot_compatibility, which ignores "info" blocks
    strip = lambda fs: {n: {k: v for k, v in f.items() if k != "info"} for n, f in fs.items()}  # noqa: E731
    assert strip(recorder.features) == strip({**features, **INDEX_FEATURES})
    assert recorder.meta.robot_type == "so100"
    assert frames_per_episode(tmp_path / "so100", "observation.images.wrist") == [10]

    calls = fake_hub(monkeypatch)  # lerobot-record ends with push_to_hub (its default)
    recorder.push_to_hub(tags=["so100"], private=True)
    assert [c[0] for c in calls] == ["create_repo", "upload_folder", "delete_tag", "create_tag"]
    upload = calls[1][2]
    assert upload["repo_id"] == "me/so100" and upload["folder_path"] == tmp_path / "so100"
    assert "meta/shmpipe/writer.lock" in upload["ignore_patterns"]
    assert calls[3][2]["tag"] == "v3.0"


def test_resume_continues_episode_and_frame_indices(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "home"))
    features = arm_features({"front": (48, 64, 3)})
    with LeRobotRecorder.create("me/resumed", 30, features, robot_type="so100") as recorder:
        assert recorder.root == tmp_path / "home" / "me" / "resumed"  # LeRobot's default root
        for i in range(6):
            recorder.add_frame(frame_for(features, i))
        recorder.save_episode()
    with LeRobotRecorder.resume("me/resumed", **RECORD_OPTIONS) as recorder:
        assert (recorder.num_episodes, recorder.num_frames) == (1, 6)
        assert recorder.meta.robot_type == "so100"
        for i in range(4):
            recorder.add_frame(frame_for(features, i, task="place the cube"))
        recorder.save_episode()
        assert (recorder.num_episodes, recorder.num_frames, recorder.meta.total_tasks) == (2, 10, 2)
    table = data_table(recorder.root)
    assert table["episode_index"].to_pylist() == [0] * 6 + [1] * 4
    assert table["index"].to_pylist() == list(range(10))
    assert table["task_index"].to_pylist() == [0] * 6 + [1] * 4
    with pytest.raises(FileExistsError, match="resume"):
        LeRobotRecorder.create("me/resumed", 30, features)
    with pytest.raises(FileNotFoundError, match="no dataset"):
        LeRobotRecorder.resume("me/absent")


@pytest.mark.parametrize("dtype", ["string", "language", "float16", "uint8"])
def test_unsupported_dtype_is_refused_naming_the_feature(tmp_path, dtype):
    features = arm_features({"front": (48, 64, 3)})
    features["observation.gripper_closed"] = {"dtype": dtype, "shape": (1,), "names": None}
    with pytest.raises(ConfigError, match=r"'observation\.gripper_closed'.*float32.*bool"):
        LeRobotRecorder.create("me/bad", 30, features, root=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_a_depth_camera_records_through_the_recorder_as_lerobot_stores_depth(tmp_path):
    features = arm_features({"front": (48, 64, 3), "depth": (48, 64, 1)})
    features["observation.images.depth"]["info"] = {"is_depth_map": True}
    recorder = LeRobotRecorder.create("me/depth", 30, features, root=tmp_path / "depth",
                                      backend="thread")  # fmt: skip
    with recorder:
        for i in range(10):
            frame = frame_for({k: v for k, v in features.items() if "depth" not in k}, i)
            frame["observation.images.depth"] = np.full((48, 64), 500 + 100 * i, np.uint16)
            recorder.add_frame(frame)
        recorder.save_episode()
        assert recorder.meta.depth_keys == ["observation.images.depth"]
        entry = recorder.meta.info["features"]["observation.images.depth"]
        path = recorder.last_episode.videos["observation.images.depth"].path
    assert tuple(entry["shape"]) == (48, 64, 1) and entry["info"]["is_depth_map"] is True
    assert entry["info"]["video.pix_fmt"] == "gray12le"
    assert len(decoded_times(path)) == 10


def test_bad_depth_shapes_and_image_datasets_are_refused_with_what_is_supported(tmp_path):
    depth = arm_features({"depth": (48, 64, 3)})
    depth["observation.images.depth"]["info"] = {"is_depth_map": True}
    with pytest.raises(ConfigError, match=r"'observation\.images\.depth'.*1 channel"):
        LeRobotRecorder.create("me/depth", 30, depth, root=tmp_path / "depth")
    with pytest.raises(ConfigError, match="use_videos=False"):
        LeRobotRecorder.create("me/img", 30, arm_features({"front": (48, 64, 3)}),
                               root=tmp_path / "img", use_videos=False)  # fmt: skip


def test_frame_without_task_or_with_a_wrong_timestamp_is_refused(tmp_path):
    features = arm_features({"front": (48, 64, 3)})
    recorder = LeRobotRecorder.create("me/task", 30, features, root=tmp_path / "task")
    with recorder:
        frame = frame_for(features, 0)
        del frame["task"]
        with pytest.raises(FrameError, match="'task'"):
            recorder.add_frame(frame)
        with pytest.raises(FrameError, match="timestamp"):
            recorder.add_frame({**frame_for(features, 0), "timestamp": 0.5})
        assert not recorder.has_pending_frames()  # nothing of either frame was added
        recorder.add_frame(frame_for(features, 0))
        recorder.save_episode()
    with pytest.raises(UsageError, match="finalized"):
        recorder.add_frame(frame_for(features, 1))
    assert recorder.num_episodes == 1


def test_the_readme_swap_routes_lerobotdataset_create_and_resume_to_the_recorder(monkeypatch):
    class LeRobotDataset:  # stands for lerobot.datasets.LeRobotDataset
        @classmethod
        def create(cls, *args, **kwargs):
            raise AssertionError("LeRobot's create was called")

        resume = create

    monkeypatch.setattr(LeRobotDataset, "create", LeRobotRecorder.create)
    monkeypatch.setattr(LeRobotDataset, "resume", LeRobotRecorder.resume)
    with pytest.raises(ConfigError, match="use_videos=False"):  # refused by ours, before start
        LeRobotDataset.create("me/swap", 30, arm_features({"front": (48, 64, 3)}), use_videos=False)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        LeRobotDataset.resume("me/swap", root="/nonexistent/shmpipe-swap")


@needs_reference
def test_resume_appends_to_a_dataset_lerobot_wrote(tmp_path):
    root = shutil.copytree(REFERENCE, tmp_path / "lerobot-written")
    old = {p: p.read_bytes() for p in [*root.glob("data/*/*"), *root.glob("videos/*/*/*")]}
    features = reference_features()
    options = {k: v for k, v in RECORD_OPTIONS.items() if k != "rgb_encoder"}  # its own, then
    with LeRobotRecorder.resume("me/adopted", root=root, **options) as recorder:
        assert (recorder.num_episodes, recorder.num_frames) == (2, 60)
        assert recorder.meta.info["shmpipe"]["video_encoder"]["vcodec"] == "libsvtav1"  # its av1
        for _ in range(2):
            for i in range(15):
                recorder.add_frame(frame_for(features, i, task="synthetic task"))
            recorder.save_episode()
        assert (recorder.num_episodes, recorder.num_frames, recorder.meta.total_tasks) == (4, 90, 1)
    assert all(path.read_bytes() == data for path, data in old.items())
    camera = next(n for n, f in features.items() if f["dtype"] == "video")
    assert frames_per_episode(root, camera) == [30, 30, 15, 15]
    assert data_table(root)["index"].to_pylist() == list(range(90))
    report = verify_dataset(root)
    assert report.ok, [p.line() for p in report.problems]
