"""What DatasetWriter writes: LeRobot v3.0 files as in the reference LeRobot wrote, and
tasks.parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from shmpipe.dataset import layout
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.stats.images import channel_histograms
from tests.helpers.dataset_writer import (
    FEATURES,
    FPS,
    VIDEO,
    open_writer,
    read_json,
    record_episode,
)
from tests.helpers.paths import REFERENCE, needs_reference


# -- layout and schemas ------------------------------------------------------------------------
@needs_reference
def test_files_match_the_reference_written_by_lerobot(tmp_path):
    cameras = {"observation.images.cam0": (96, 128, 3), "observation.images.cam1": (96, 128, 3)}
    root = tmp_path / "ds"
    joints = {name: [f"j{i}" for i in range(6)] for name in FEATURES}
    with DatasetWriter.open(
        root, FPS, cameras, FEATURES, VIDEO, robot_type="synthetic", feature_names=joints
    ) as w:
        for seed in range(2):
            episode = w.next_episode_index
            rows = EpisodeRows(FEATURES)
            rows.reserve(30)
            for _ in range(30):
                rows.append({n: np.ones(6, np.float32) for n in FEATURES}, w.task_index("task"))
            for name in cameras:
                layout.video_path(root, name, episode).parent.mkdir(parents=True, exist_ok=True)
                layout.video_path(root, name, episode).write_bytes(b"")
            frame = np.full((96, 128, 3), seed * 50, np.uint8)
            hist = {name: channel_histograms(frame) * 30 for name in cameras}
            w.commit_episode(episode, rows, hist)

    def schema(relative: str, base: Path) -> tuple:
        s = pq.read_schema(base / relative)
        return s.remove_metadata(), set(s.metadata or {})

    for relative in [
        "data/chunk-000/file-000.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/tasks.parquet",
    ]:
        ours, theirs = schema(relative, root), schema(relative, REFERENCE)
        assert ours[0].equals(theirs[0]), f"{relative}:\n{ours[0]}\n!=\n{theirs[0]}"
        assert ours[1] == theirs[1], f"{relative}: schema metadata keys {ours[1]} != {theirs[1]}"
    # LeRobot keeps a file per (chunk, file) of many episodes; we keep one per episode.
    assert (root / "meta/episodes/chunk-000/file-001.parquet").is_file()
    assert (root / "data/chunk-000/file-001.parquet").is_file()

    def hf_features(base: Path) -> dict:
        meta = pq.read_schema(base / "data/chunk-000/file-000.parquet").metadata
        return json.loads(meta[b"huggingface"])

    ours, theirs = hf_features(root), hf_features(REFERENCE)
    assert ours["info"] == theirs["info"]
    assert set(ours) == set(theirs)

    def pandas_meta(base: Path) -> dict:
        meta = json.loads(pq.read_schema(base / "meta/tasks.parquet").metadata[b"pandas"])
        return {k: v for k, v in meta.items() if k not in ("creator", "pandas_version")}

    assert pandas_meta(root) == pandas_meta(REFERENCE)

    info, ref_info = read_json(root / "meta/info.json"), read_json(REFERENCE / "meta/info.json")
    assert list(info)[: len(ref_info)] == list(ref_info)
    assert set(info) - set(ref_info) == {"shmpipe"}
    for key in ref_info:
        if key != "features":
            assert info[key] == ref_info[key], key
    assert list(info["features"]) == list(ref_info["features"])
    for name, entry in ref_info["features"].items():
        assert info["features"][name] == entry, name

    stats, ref_stats = read_json(root / "meta/stats.json"), read_json(REFERENCE / "meta/stats.json")
    assert set(stats) == set(ref_stats)
    for name, feature_stats in ref_stats.items():
        assert list(stats[name]) == list(feature_stats), name
        for key, value in feature_stats.items():
            assert np.shape(stats[name][key]) == np.shape(value), (name, key)
            assert type(np.ravel(stats[name][key])[0].item()) is type(np.ravel(value)[0].item())


def test_tasks_parquet_is_keyed_by_task_text_in_index_order(tmp_path):
    with open_writer(tmp_path / "ds") as w:
        first = record_episode(w, 10, ["pick the cube"], seed=0)
        second = record_episode(w, 10, ["place it", "pick the cube"], seed=1)
    rows = pq.read_table(tmp_path / "ds/meta/tasks.parquet").to_pylist()
    assert rows == [
        {"task_index": 0, "__index_level_0__": "pick the cube"},
        {"task_index": 1, "__index_level_0__": "place it"},
    ]
    assert first.tasks == ["pick the cube"]
    assert second.tasks == ["place it", "pick the cube"]
    episode = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-001.parquet")
    assert episode.column("tasks").to_pylist() == [["place it", "pick the cube"]]
    assert read_json(tmp_path / "ds/meta/info.json")["total_tasks"] == 2
