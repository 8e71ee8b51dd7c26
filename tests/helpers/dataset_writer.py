"""DatasetWriter without a recorder: episodes made as Pipeline makes them (EpisodeRows, histograms
of the downsampled frames) with placeholder video files (the writer only checks that videos
exist), the numpy oracle of their stats, and what LeRobot's loader relies on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe.dataset import files, layout
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.stats.images import STAT_KEYS, channel_histograms
from shmpipe.video.encoder_config import VideoEncoderConfig
from tests.helpers.oracles import exact_image_stats, numeric_stats

FPS = 30
CAMERAS = {"observation.images.cam0": (24, 32, 3), "observation.images.cam1": (24, 32, 3)}
FEATURES = {"observation.state": (6,), "action": (6,)}
VIDEO = VideoEncoderConfig().as_dict()
INTEGER_COLUMNS = ("frame_index", "episode_index", "index", "task_index")


def open_writer(root: Path, **changes) -> DatasetWriter:
    args = {"fps": FPS, "cameras": CAMERAS, "features": FEATURES, "video": VIDEO}
    args.update(changes)
    return DatasetWriter.open(root, **args)


class Recorded:
    """Everything recorded so far, kept to compute the expected stats with numpy."""

    def __init__(self) -> None:
        self.columns: list[dict[str, np.ndarray]] = []
        self.frames: dict[str, list[np.ndarray]] = {name: [] for name in CAMERAS}

    def all_rows(self, name: str) -> np.ndarray:
        return np.concatenate([c[name].reshape(len(c["index"]), -1) for c in self.columns])


def make_rows(writer: DatasetWriter, length: int, tasks: list[str], rng) -> EpisodeRows:
    rows = EpisodeRows(FEATURES, initial_capacity=4)
    for i in range(length):
        values = {
            name: rng.normal(size=shape).astype(np.float32) for name, shape in FEATURES.items()
        }
        rows.ensure_room()
        rows.append(values, writer.task_index(tasks[i * len(tasks) // length]))
    return rows


def record_episode(
    writer: DatasetWriter,
    length: int,
    tasks: list[str],
    seed: int,
    recorded: Recorded | None = None,
    commit: bool = True,
):
    """Put one episode's (placeholder) video files in place, then commit it with its rows;
    with commit=False return its rows and histograms instead."""
    rng = np.random.default_rng(seed)
    episode = writer.next_episode_index
    rows = make_rows(writer, length, tasks, rng)
    columns = rows.columns(FPS, episode, writer.next_frame_index)
    histograms = {}
    for name, shape in CAMERAS.items():
        frames = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(length)]
        histograms[name] = sum(channel_histograms(f) for f in frames)
        path = layout.video_path(writer.root, name, episode)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"placeholder mp4")
        if recorded is not None:
            recorded.frames[name] += frames
    if recorded is not None:
        recorded.columns.append(columns)
    if commit:
        return writer.commit_episode(episode, rows, histograms)
    return rows, histograms


def numpy_stats(recorded: Recorded) -> dict[str, dict[str, np.ndarray]]:
    """One pass of numpy over every frame recorded."""
    expected = {name: numeric_stats(recorded.all_rows(name)) for name in FEATURES}
    for name in ("timestamp", *INTEGER_COLUMNS):
        expected[name] = numeric_stats(recorded.all_rows(name))
    for name in CAMERAS:
        expected[name] = exact_image_stats(recorded.frames[name])
    return expected


def assert_stats_equal(actual: dict, expected: dict, where: str) -> None:
    for key in STAT_KEYS:
        got, want = np.asarray(actual[key]), np.asarray(expected[key])
        assert got.shape == want.shape, f"{where} {key}: shape {got.shape} != {want.shape}"
        if key in ("mean", "std"):  # float64 sums in another order: equal to rounding
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=f"{where} {key}")
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"{where} {key}")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "writer.lock"
    }


def assert_loadable(root: Path) -> None:
    """What LeRobot's loader relies on, checked with pyarrow: info.json's totals agree with the
    meta/episodes rows and data rows found by its globs, and every file an episode names exists."""
    info = read_json(root / "meta" / "info.json")
    episodes = [
        row
        for path in sorted((root / "meta" / "episodes").glob("*/*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]
    assert [e["episode_index"] for e in episodes] == list(range(info["total_episodes"]))
    data_files = sorted((root / "data").glob("*/*.parquet"))
    data = [pq.read_table(p) for p in data_files]
    assert sum(t.num_rows for t in data) == info["total_frames"]
    indices = np.concatenate([t.column("index").to_numpy() for t in data]) if data else []
    assert list(indices) == list(range(info["total_frames"]))
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pylist() if episodes else []
    assert [t["task_index"] for t in tasks] == list(range(info["total_tasks"]))
    start = 0
    for e in episodes:
        assert (e["dataset_from_index"], e["dataset_to_index"]) == (start, start + e["length"])
        start += e["length"]
        data_path = info["data_path"].format(
            chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]
        )
        assert (root / data_path).is_file()
        for name in CAMERAS:
            video = info["video_path"].format(
                video_key=name,
                chunk_index=e[f"videos/{name}/chunk_index"],
                file_index=e[f"videos/{name}/file_index"],
            )
            assert (root / video).is_file()
            assert e[f"videos/{name}/from_timestamp"] == 0.0
            assert e[f"videos/{name}/to_timestamp"] == pytest.approx(e["length"] / info["fps"])
        assert set(e["tasks"]) <= {t["__index_level_0__"] for t in tasks}
    stats = read_json(root / "meta" / "stats.json") if episodes else {}
    if episodes:
        assert set(stats) == set(info["features"])
    assert not [p for p in root.rglob("*") if ".partial" in p.name or p.suffix == ".joining"]


def unfinished_files(root: Path) -> list[Path]:
    """What a running recorder has on disk besides committed episodes: segments, temporaries."""
    video = layout.video_path(root, "observation.images.cam0", 1)
    return [
        video.with_name(video.name + ".partial.000000"),
        video.with_name(video.name + ".joining"),
        layout.data_path(root, 1).with_name("file-001.parquet.partial"),
        root / "meta" / "stats.json.partial",
    ]


def every_file(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def failing_open(monkeypatch, file_name: str) -> None:
    """The atomic writer's open of `file_name` (its temporary) fails as on a full disk."""
    real_open = open

    def fake_open(path, *args, **kwargs):
        if Path(path).name == file_name + ".partial":
            raise OSError(28, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(files, "open", fake_open, raising=False)
