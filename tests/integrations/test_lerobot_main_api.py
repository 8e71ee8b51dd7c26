"""LeRobotRecorder driven exactly as LeRobot main's lerobot-record drives its dataset (read from
huggingface/lerobot 7427f31, src/lerobot/scripts/lerobot_record.py, datasets/video_utils.py
VideoEncodingManager, common/control_utils.py), through shmpipe's install(): no LeRobot needed.

A stand-in module `lerobot.scripts.lerobot_record` replays main's sequence of calls and
attributes on the dataset: `LeRobotDataset.create(...)` or `.resume(...)` with main's keywords,
the sanity check (meta.robot_type, fps, features), `VideoEncodingManager(dataset)` reading
`dataset.writer`, `dataset.num_episodes`, the loop's `dataset.fps`, `dataset.features` and
`add_frame`, `clear_episode_buffer()` on re-record, `save_episode()`, `finally: if dataset:
dataset.finalize()`, and `push_to_hub(tags=, private=)` only if `num_episodes > 0`. LeRobot's
own class there refuses to be used. Frames carry a counter (image corner and state); every
decoded frame is checked against its row in place.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe.integrations import lerobot as shm_lerobot
from shmpipe.integrations.lerobot import LeRobotRecorder
from tests.helpers.frames import smooth_frame, value_of
from tests.helpers.media import decode_video

H, W, FPS = 64, 96, 30
CAMERAS = ("front", "wrist")
JOINTS = [f"j{i}.pos" for i in range(6)]
DEFAULT_FEATURES = {  # lerobot.utils.constants.DEFAULT_FEATURES
    "timestamp": {"dtype": "float32", "shape": (1,), "names": None},
    "frame_index": {"dtype": "int64", "shape": (1,), "names": None},
    "episode_index": {"dtype": "int64", "shape": (1,), "names": None},
    "index": {"dtype": "int64", "shape": (1,), "names": None},
    "task_index": {"dtype": "int64", "shape": (1,), "names": None},
}
RGB_ENCODER = types.SimpleNamespace(vcodec="libsvtav1", pix_fmt="yuv420p", g=2, crf=30,
                                    preset=12, fast_decode=0, extra_options={})  # fmt: skip


@pytest.fixture(autouse=True)
def thread_backend(monkeypatch):
    monkeypatch.setenv("SHMPIPE_BACKEND", "thread")


class Robot:
    """Counter robot: observation k shows value_of(k) in each camera's corner and k in the
    joints; raises `fail` at counter `fail_at`."""

    robot_type = name = "counter"

    def __init__(self, fail_at=None, fail=RuntimeError):
        self.counter, self.fail_at, self.fail = -1, fail_at, fail

    def get_observation(self) -> dict:
        self.counter += 1
        if self.counter == self.fail_at:
            raise self.fail(f"robot failed at {self.counter}")
        obs = {j: float(self.counter) + i / 10 for i, j in enumerate(JOINTS)}
        for c in CAMERAS:
            img = smooth_frame(self.counter, H, W).copy()
            img[:32, :32] = value_of(self.counter)
            obs[c] = img
        return obs


def dataset_features() -> dict:
    features = {"action": {"dtype": "float32", "shape": (6,), "names": list(JOINTS)},
                "observation.state": {"dtype": "float32", "shape": (6,), "names": list(JOINTS)}}
    for c in CAMERAS:
        features[f"observation.images.{c}"] = {
            "dtype": "video", "shape": (H, W, 3), "names": ["height", "width", "channels"]}
    return features


def main_record_module(pushed: list) -> types.ModuleType:
    """The parts of main's lerobot_record that touch the dataset, in main's order."""
    module = types.ModuleType("lerobot.scripts.lerobot_record")

    class LeRobotDataset:  # LeRobot's own class: must not be reached
        def __init__(self, *args, **kwargs):
            raise AssertionError("LeRobot's own LeRobotDataset was constructed")

        @classmethod
        def create(cls, *args, **kwargs):
            raise AssertionError("LeRobot's own create() was called")

        @classmethod
        def resume(cls, *args, **kwargs):
            raise AssertionError("LeRobot's own resume() was called")

    class VideoEncodingManager:  # datasets/video_utils.py
        def __init__(self, dataset):
            self.dataset = dataset

        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc, tb):
            writer = self.dataset.writer  # a required attribute on main
            assert writer is None, "a writer would be cancelled and cleaned up here"
            self.dataset.finalize()
            images = self.dataset.root / "images"
            assert not images.exists()
            return False

    def sanity_check(dataset, robot, fps, features):  # common/control_utils.py
        def strip(feats):
            return {k: {n: v for n, v in f.items() if n != "info"} for k, f in feats.items()}

        assert dataset.meta.robot_type == robot.robot_type
        assert dataset.fps == fps
        assert strip(dataset.features) == strip({**features, **DEFAULT_FEATURES})

    def record_loop(robot, events, fps, dataset, frames, task):
        if dataset is not None and dataset.fps != fps:
            raise ValueError("fps")
        for _ in range(frames):
            obs = robot.get_observation()
            if dataset is None:
                continue
            names = dataset.features["observation.state"]["names"]
            state = np.array([obs[n] for n in names], dtype=np.float32)
            frame = {"observation.state": state, "action": state + np.float32(0.05), "task": task}
            for key, feature in dataset.features.items():
                if feature["dtype"] == "video":
                    frame[key] = obs[key.removeprefix("observation.images.")]
            dataset.add_frame(frame)
        if events.pop("rerecord_once", False):
            events["rerecord_episode"] = True

    def record(cfg, robot):
        features = dataset_features()
        dataset = None
        try:
            if cfg.resume:
                dataset = module.LeRobotDataset.resume(
                    cfg.repo_id, root=cfg.root, batch_encoding_size=1, rgb_encoder=RGB_ENCODER,
                    depth_encoder=object(), encoder_threads=None, streaming_encoding=False,
                    encoder_queue_maxsize=30, image_writer_processes=0, image_writer_threads=8)
                sanity_check(dataset, robot, cfg.fps, features)
            else:
                dataset = module.LeRobotDataset.create(
                    cfg.repo_id, cfg.fps, root=cfg.root, robot_type=robot.name,
                    features=features, use_videos=True, image_writer_processes=0,
                    image_writer_threads=8, batch_encoding_size=1, rgb_encoder=RGB_ENCODER,
                    depth_encoder=object(), encoder_threads=None, streaming_encoding=False,
                    encoder_queue_maxsize=30)
            events = {"rerecord_episode": False, "rerecord_once": cfg.rerecord_first}
            with module.VideoEncodingManager(dataset):
                recorded = 0
                while recorded < cfg.num_episodes:
                    record_loop(robot, events, cfg.fps, dataset, cfg.frames, "count")
                    record_loop(robot, events, cfg.fps, None, 3, "count")  # reset
                    if events["rerecord_episode"]:
                        events["rerecord_episode"] = False
                        dataset.clear_episode_buffer()
                        continue
                    dataset.save_episode()
                    recorded += 1
        finally:
            if dataset:
                dataset.finalize()
            if cfg.push_to_hub:
                if dataset and dataset.num_episodes > 0:
                    dataset.push_to_hub(tags=None, private=False)
        return dataset

    module.LeRobotDataset = LeRobotDataset
    module.VideoEncodingManager = VideoEncodingManager
    module.record = record
    return module


@pytest.fixture
def main_lerobot(monkeypatch):
    pushed = []
    module = main_record_module(pushed)
    package, scripts = types.ModuleType("lerobot"), types.ModuleType("lerobot.scripts")
    package.scripts, scripts.lerobot_record = scripts, module
    for name, mod in (("lerobot", package), ("lerobot.scripts", scripts),
                      ("lerobot.scripts.lerobot_record", module)):  # fmt: skip
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("shmpipe.integrations.lerobot.hub.push_folder",
                        lambda root, repo_id, *args: pushed.append((root, repo_id)))  # fmt: skip
    return module, pushed


def config(root: Path, **overrides) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{
        "repo_id": "local/counter", "root": root, "fps": FPS, "num_episodes": 2, "frames": 12,
        "resume": False, "push_to_hub": False, "rerecord_first": False, **overrides})  # fmt: skip


def check_in_place(root: Path) -> list[int]:
    """Every camera frame of every row shows the row's counter; returns frames per episode."""
    info = json.loads((root / "meta" / "info.json").read_text())
    episodes = pq.read_table(sorted((root / "meta" / "episodes").rglob("*.parquet"))).to_pylist()
    rows = pq.read_table(sorted((root / "data").rglob("*.parquet"))).to_pydict()
    state = np.array(rows["observation.state"])
    counters = np.rint(state[:, 0]).astype(int)
    episode_of = np.array(rows["episode_index"])
    lengths = []
    for ep in episodes:
        index = ep["episode_index"]
        want = counters[episode_of == index]
        assert np.all(np.diff(want) == 1)
        for c in CAMERAS:
            key = f"observation.images.{c}"
            path = root / info["video_path"].format(
                video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
                file_index=ep[f"videos/{key}/file_index"])  # fmt: skip
            frames, times = decode_video(path)
            start = ep[f"videos/{key}/from_timestamp"]
            pairs = zip(frames, times, strict=True)
            got = [f[4:28, 4:28].mean() for f, t in pairs if t + 1e-3 >= start]
            got = got[: len(want)]
            assert np.allclose(got, [value_of(k) for k in want], atol=6), (key, index)
        lengths.append(len(want))
    return lengths


def test_main_record_sequence_creates_rerecords_resumes_and_pushes(main_lerobot, tmp_path):
    module, pushed = main_lerobot
    root = tmp_path / "counter"
    with shm_lerobot.install() as handle:
        assert handle.api == "main" and module.LeRobotDataset is handle.stand_in
        first = module.record(config(root, rerecord_first=True), Robot())
        assert isinstance(first, LeRobotRecorder) and first.num_episodes == 2
        assert [n for _, n, _ in first.saved] == [12, 12]
        # the first take was discarded: episode 0 starts at the second take's counter 15
        again = module.record(config(root, resume=True, push_to_hub=True), Robot(fail_at=None))
        assert again.num_episodes == 4 and again.num_frames == 48
        assert pushed == [(root, "local/counter")]
    assert module.LeRobotDataset.__name__ == "LeRobotDataset" and not handle.active
    assert check_in_place(root) == [12, 12, 12, 12]
    rows = pq.read_table(sorted((root / "data").rglob("*.parquet"))).to_pydict()
    assert rows["observation.state"][0][0] == 15  # 12 frames + 3 reset, then the second take


@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_a_failure_in_main_record_surfaces_as_itself(main_lerobot, tmp_path, failure):
    module, pushed = main_lerobot
    root = tmp_path / "counter"
    with shm_lerobot.install():
        with pytest.raises(failure, match="robot failed at 20") as raised:
            module.record(config(root, push_to_hub=True), Robot(fail_at=20, fail=failure))
    assert raised.value.__context__ is None  # nothing of ours raised while it propagated
    assert check_in_place(root) == [12]  # the saved episode stays, the open one is discarded
    assert pushed == [(root, "local/counter")]  # main pushes what was saved


def test_resuming_a_root_lerobot_wrote_appends_to_it(main_lerobot, tmp_path):
    module, _ = main_lerobot
    root = tmp_path / "counter"
    with shm_lerobot.install():
        module.record(config(root, num_episodes=1), Robot())
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    del info["shmpipe"]  # as LeRobot writes it
    info_path.write_text(json.dumps(info))
    with shm_lerobot.install():
        module.record(config(root, resume=True, num_episodes=1), Robot())
    assert len(check_in_place(root)) == 2
    assert json.loads(info_path.read_text())["shmpipe"]["adopted_episodes"] == 1


def test_install_needs_lerobot_and_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "lerobot", None)
    with pytest.raises(shm_lerobot.LeRobotMissing, match="pip install lerobot"):
        shm_lerobot.install()


def test_shmpipe_lerobot_record_without_lerobot_exits_1(monkeypatch, capsys):
    from shmpipe.tools.cli import main

    monkeypatch.setitem(sys.modules, "lerobot", None)
    assert main(["lerobot-record", "--robot.type=so101_follower", "--resume=true"]) == 1
    assert "install LeRobot" in capsys.readouterr().err
    assert main(["verify", "--robot.type=x"]) == 1  # other subcommands still refuse unknowns
