"""Features of LeRobot's other dtypes through the drop-in: DAgger's `intervention` (bool (1,)),
an int64 and a float64 vector and a float32 scalar, given as LeRobot's features dict, record
through LeRobotRecorder (created, then resumed), `shmpipe verify` passes, LeRobot loads every
row as it was fed, and the columns and stats are those LeRobot's own writer makes for the same
features and values; a dataset LeRobot's own writer made with them resumes through shmpipe.

Marked `lerobot` (CI runs it in the LeRobot venvs, .ci/lerobot_venv.sh); skipped without LeRobot
unless LEROBOT_REQUIRED=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe.integrations.lerobot.recorder import LeRobotRecorder
from tests.helpers.frames import smooth_frame
from tests.helpers.lerobot import import_lerobot
from tests.helpers.oracles import numeric_stats

pytestmark = pytest.mark.lerobot
H, W = 48, 64
CAMERA = {"observation.images.front": {"dtype": "video", "shape": (H, W, 3),
                                       "names": ["height", "width", "channels"]}}  # fmt: skip
TYPED = {
    "observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
    "intervention": {"dtype": "bool", "shape": (1,), "names": None},  # as lerobot-rollout adds it
    "observation.counter": {"dtype": "int64", "shape": (2,), "names": None},
    "observation.precise": {"dtype": "float64", "shape": (3,), "names": None},
    "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
}
EPISODES = (8, 1, 5)  # the last one appended by a resume


def values(i: int) -> dict[str, np.ndarray]:
    """Frame i's features as LeRobot's loops make them (numpy of the feature's dtype)."""
    return {
        "observation.state": np.array([i / 4, -i], np.float32),
        "intervention": np.array([i % 3 == 1], dtype=bool),
        "observation.counter": np.array([i * 9 - 30, 10**12 + i], np.int64),
        "observation.precise": np.array([0.1 * i, -1e-300 * i, 1e100 * (1 + i / 8)]),  # > float32
        "next.reward": np.array([i % 2], np.float32),
    }


def shmpipe_dataset(root: Path) -> None:
    features, i = {**CAMERA, **TYPED}, 0
    for n, episodes in ((0, EPISODES[:2]), (1, EPISODES[2:])):
        if n == 0:
            recorder = LeRobotRecorder.create("local/typed", 30, features, root=root,
                                              backend="thread")  # fmt: skip
        else:
            recorder = LeRobotRecorder.resume("local/typed", root=root, backend="thread")
        with recorder:
            for length in episodes:
                for _ in range(length):
                    image = smooth_frame(i, H, W)
                    recorder.add_frame({"observation.images.front": image, **values(i),
                                        "task": "pick"})  # fmt: skip
                    i += 1
                recorder.save_episode()
            recorder.finalize()


def lerobots_own_dataset(dataset_class, root: Path) -> None:
    """The same features and values written by LeRobot's own writer (as lerobot-rollout's
    DAgger strategy would), then one more episode appended through LeRobotRecorder.resume."""
    dataset = dataset_class.create("local/own", fps=30, root=root, features={**CAMERA, **TYPED})
    i = 0
    for length in EPISODES:
        for _ in range(length):
            image = smooth_frame(i, H, W)
            dataset.add_frame({"observation.images.front": image, **values(i), "task": "pick"})
            i += 1
        dataset.save_episode()
    if hasattr(dataset, "finalize"):
        dataset.finalize()


def verify(root: Path) -> None:
    """`shmpipe verify`, as a user runs it."""
    path = os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))
    run = subprocess.run([sys.executable, "-m", "shmpipe", "verify", str(root)],
                         env={**os.environ, "PYTHONPATH": path}, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def assert_rows_as_fed(dataset_class, root: Path, total: int) -> None:
    """LeRobot loads every row of the typed features as frames 0..total-1 fed them."""
    loaded = dataset_class("local/x", root=root, video_backend="pyav")
    assert loaded.num_frames == total
    rows = loaded.hf_dataset.with_format(None)
    for name, feature in TYPED.items():
        got = np.array(rows[name], dtype=feature["dtype"]).reshape(total, -1)
        assert np.array_equal(got, np.stack([values(i)[name] for i in range(total)])), name


def test_typed_features_record_verify_and_load_as_lerobot_writes_them(tmp_path):
    dataset_class = import_lerobot("lerobot.datasets.lerobot_dataset").LeRobotDataset
    import torch

    ours, own = tmp_path / "ours", tmp_path / "own"
    shmpipe_dataset(ours)
    verify(ours)
    total = sum(EPISODES)
    fed = [values(i) for i in range(total)]
    assert_rows_as_fed(dataset_class, ours, total)
    loaded = dataset_class("local/typed", root=ours, video_backend="pyav")
    assert loaded.num_episodes == len(EPISODES)
    item = loaded[4]
    assert item["intervention"].dtype == torch.bool and bool(item["intervention"]) is True
    assert item["observation.counter"].tolist() == [6, 10**12 + 4]
    assert item["observation.images.front"].shape == (3, H, W)

    lerobots_own_dataset(dataset_class, own)
    ours_file = next((ours / "data").rglob("*.parquet"))
    own_file = next((own / "data").rglob("*.parquet"))
    ours_schema, own_schema = pq.read_schema(ours_file), pq.read_schema(own_file)
    ours_hf, own_hf = (json.loads(s.metadata[b"huggingface"])["info"]["features"]
                       for s in (ours_schema, own_schema))  # fmt: skip
    for name in TYPED:
        assert ours_schema.field(name).type == own_schema.field(name).type, name
        assert ours_hf[name] == own_hf[name], name
    ours_info, own_info = (json.loads((r / "meta/info.json").read_text())["features"]
                           for r in (ours, own))  # fmt: skip
    assert {n: ours_info[n] for n in TYPED} == {n: own_info[n] for n in TYPED}
    ours_stats, own_stats = (json.loads((r / "meta/stats.json").read_text()) for r in (ours, own))
    # min, max and count as LeRobot's; mean, std and quantiles exact, where LeRobot's are not
    # (its quantiles come from 5000-bin histograms, its std from E[x^2] - mean^2, which gives
    # 3.54 for 10**12 + 0..13 instead of 4.03; 0.6.1 averages bools in float32)
    for name in TYPED:
        for key in ("min", "max", "count"):
            assert np.array_equal(ours_stats[name][key], own_stats[name][key]), (name, key)
        exact = numeric_stats(np.stack([f[name] for f in fed]))
        for key in ("mean", "std", "q01", "q50", "q99"):
            np.testing.assert_allclose(ours_stats[name][key], exact[key], rtol=1e-9,
                                       err_msg=f"{name} {key}")  # fmt: skip

    # the dataset LeRobot wrote, resumed through shmpipe (a DAgger session goes on)
    with LeRobotRecorder.resume("local/own", root=own, backend="thread") as recorder:
        for i in range(total, total + 4):
            recorder.add_frame({"observation.images.front": smooth_frame(i, H, W), **values(i),
                                "task": "pick"})  # fmt: skip
        recorder.save_episode()
        recorder.finalize()
    verify(own)
    assert_rows_as_fed(dataset_class, own, total + 4)
