"""DatasetWriter alone: LeRobot v3.0 files as in the reference, exact stats, resume, crashes.

Episodes are made here as Pipeline makes them (EpisodeRows, histograms of the downsampled
frames) with placeholder video files: the writer only checks that videos exist.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe.dataset import files, layout
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.dataset.writer import DatasetWriter, check_names, remove_unfinished
from shmpipe.errors import ConfigError, DatasetError, UsageError
from shmpipe.stats.columns import ColumnValues
from shmpipe.stats.images import STAT_KEYS, channel_histograms
from shmpipe.video.encoder_config import VideoEncoderConfig
from tests.helpers.oracles import exact_image_stats, numeric_stats
from tests.helpers.paths import REFERENCE, needs_reference

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


# -- stats -------------------------------------------------------------------------------------
def test_dataset_stats_equal_one_numpy_pass_over_all_frames(tmp_path):
    recorded = Recorded()
    with open_writer(tmp_path / "ds") as w:
        for seed, length in enumerate([30, 7, 1, 45, 12]):
            tasks = ["a", "b"] if seed % 2 else ["c"]
            committed = record_episode(w, length, tasks, seed, recorded)
            episode_only = Recorded()
            episode_only.columns = recorded.columns[-1:]
            episode_only.frames = {n: f[-length:] for n, f in recorded.frames.items()}
            for name, want in numpy_stats(episode_only).items():
                assert_stats_equal(committed.stats[name], want, f"episode {seed} {name}")
    stats = read_json(tmp_path / "ds/meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")
    for name in INTEGER_COLUMNS:
        assert all(isinstance(v, int) for v in stats[name]["min"] + stats[name]["max"]), name


def test_episode_stats_columns_hold_that_episodes_stats(tmp_path):
    recorded = Recorded()
    with open_writer(tmp_path / "ds") as w:
        record_episode(w, 20, ["a"], 0, recorded)
        record_episode(w, 9, ["a"], 1, recorded)
    row = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-001.parquet").to_pylist()[0]
    second = Recorded()
    second.columns = recorded.columns[1:]
    second.frames = {n: f[20:] for n, f in recorded.frames.items()}
    for name, want in numpy_stats(second).items():
        got = {key: row[f"stats/{name}/{key}"] for key in STAT_KEYS}
        assert_stats_equal(got, want, f"episode 1 {name}")
    assert (row["dataset_from_index"], row["dataset_to_index"], row["length"]) == (20, 29, 9)


@pytest.mark.parametrize("sizes", [[1], [2, 3], [5, 1, 8, 13], [100, 1, 1, 57]])
def test_merged_column_values_give_numpys_quantiles_exactly(sizes):
    rng = np.random.default_rng(len(sizes))
    parts = [rng.integers(-5, 5, (n, 3)).astype(np.float32) / 3 for n in sizes]  # many ties
    merged = ColumnValues.empty(3)
    for part in parts:
        merged = merged.merged(ColumnValues.of(part))
    assert_stats_equal(merged.stats(), numeric_stats(np.concatenate(parts)), f"sizes {sizes}")


# -- resume ------------------------------------------------------------------------------------
def test_resume_continues_indices_and_rewrites_nothing(tmp_path):
    root, recorded = tmp_path / "ds", Recorded()
    with open_writer(root) as w:
        record_episode(w, 15, ["pick"], 0, recorded)
        record_episode(w, 10, ["place"], 1, recorded)
    before = file_digests(root)

    with open_writer(root) as w:
        assert (w.next_episode_index, w.next_frame_index) == (2, 25)
        assert w.task_index("place") == 1
        assert w.task_index("wave") == 2
        assert file_digests(root) == before  # opening changes nothing
        record_episode(w, 8, ["wave", "pick"], 2, recorded)

    after = file_digests(root)
    changed = {p for p in before if after[p] != before[p]}
    assert changed == {"meta/info.json", "meta/stats.json", "meta/tasks.parquet",
                       "meta/shmpipe/state.npz"}  # fmt: skip
    info = read_json(root / "meta/info.json")
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 33, 3)
    assert info["splits"] == {"train": "0:3"}
    data = pq.read_table(root / "data/chunk-000/file-002.parquet")
    assert data.column("index").to_pylist() == list(range(25, 33))
    assert set(data.column("episode_index").to_pylist()) == {2}
    # Stats cover the episodes before the resume too: the accumulators were read back.
    stats = read_json(root / "meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")
    assert_loadable(root)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fps": 15}, "fps: expected 15, found 30"),
        (
            {"cameras": {**CAMERAS, "observation.images.cam1": (48, 64, 3)}},
            "camera 'observation.images.cam1' shape: expected [48, 64, 3], found [24, 32, 3]",
        ),
        (
            {"features": {**FEATURES, "observation.state": (7,)}},
            "feature 'observation.state' shape: expected [7], found [6]",
        ),
        (
            {"features": {"observation.state": (6,)}},
            "features: expected ['observation.state'], found ['action', 'observation.state']",
        ),
        ({"video": {**VIDEO, "crf": 20}}, "video encoder crf: expected 20, found 30"),
        ({"video": {**VIDEO, "vcodec": "libx264"}}, "video.codec: expected 'h264', found 'av1'"),
    ],
)
def test_resume_with_other_settings_is_refused_and_names_the_difference(tmp_path, change, message):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
    before = file_digests(root)
    with pytest.raises(ValueError) as error:
        open_writer(root, **change)
    assert message in str(error.value)
    assert file_digests(root) == before
    open_writer(root).close()  # the refused attempt left the dataset open to others


def test_new_dataset_needs_an_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        open_writer(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_second_writer_on_the_same_dataset_is_refused(tmp_path):
    with open_writer(tmp_path / "ds"):
        with pytest.raises(RuntimeError, match="another writer"):
            open_writer(tmp_path / "ds")
    open_writer(tmp_path / "ds").close()


# -- failures and crashes ----------------------------------------------------------------------
def test_crash_before_info_json_leaves_the_last_committed_dataset(tmp_path, monkeypatch):
    root, recorded = tmp_path / "ds", Recorded()
    with open_writer(root) as w:
        record_episode(w, 12, ["a"], 0, recorded)
        record_episode(w, 6, ["a"], 1, recorded)
    committed = file_digests(root)

    w = open_writer(root)
    # Die at the commit point of episode 2: every other file of it is already written.
    monkeypatch.setattr(w, "_publish_info", lambda info: (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):
        record_episode(w, 9, ["new task"], 2)
    assert (root / "meta/episodes/chunk-000/file-002.parquet").is_file()
    # ... and the files of an episode that was still being recorded when it died:
    for name in CAMERAS:
        segment = layout.video_path(root, name, 3).with_name("file-003.mp4.partial.000000")
        segment.write_bytes(b"half an mp4")
    (root / "data/chunk-000/file-003.parquet.partial").write_bytes(b"half a parquet")
    w.close()

    with open_writer(root) as w:
        assert (w.next_episode_index, w.next_frame_index) == (2, 18)
    assert_loadable(root)
    # Nothing of episodes 2 and 3 is left: the files are those of episodes 0-1, as they were.
    # stats.json and tasks.parquet, already written for episode 2, count episodes 0-1 again
    # (stats.json's float sums may differ in the last bit: recomputed in another order).
    left = file_digests(root)
    assert set(left) == set(committed)
    assert {k for k in left if left[k] != committed[k]} <= {"meta/stats.json"}
    assert pq.read_table(root / "meta/tasks.parquet").column(1).to_pylist() == ["a"]
    stats = read_json(root / "meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")


def test_failed_commit_changes_nothing_and_the_episode_can_be_committed_again(tmp_path):
    root, recorded = tmp_path / "ds", Recorded()
    with open_writer(root) as w:
        record_episode(w, 10, ["a"], 0, recorded)
        rows, histograms = record_episode(w, 10, ["a"], 1, recorded, commit=False)
        video = layout.video_path(root, "observation.images.cam1", 1)
        video.unlink()
        with pytest.raises(ValueError, match="files not in place"):
            w.commit_episode(1, rows, histograms)
        assert (w.next_episode_index, w.next_frame_index) == (1, 10)
        assert not layout.data_path(root, 1).exists()  # checked before anything is written
        video.write_bytes(b"placeholder mp4")
        w.commit_episode(1, rows, histograms)
    assert read_json(root / "meta/info.json")["total_episodes"] == 2
    stats = read_json(root / "meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")


def test_discarded_episode_leaves_no_trace(tmp_path):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 10, ["a"], 0)
        committed = file_digests(root)
        record_episode(w, 10, ["b"], 1, commit=False)
        for name in CAMERAS:  # as a killed encoder leaves them
            video = layout.video_path(root, name, 1)
            video.with_name(video.name + ".partial.000004").write_bytes(b"segment")
        w.discard_episode(1)
        assert file_digests(root) == committed
        assert w.task_index("c") == 1  # "b" was never committed: its index is free again
        record_episode(w, 10, ["c"], 2)
    tasks = pq.read_table(root / "meta/tasks.parquet").column(1).to_pylist()
    assert tasks == ["a", "c"]
    assert_loadable(root)


def other_rows(features: dict) -> EpisodeRows:
    rows = EpisodeRows(features)
    rows.reserve(10)
    for _ in range(10):
        rows.append({n: np.zeros(shape, np.float32) for n, shape in features.items()}, 0)
    return rows


SPOILED = {  # what is wrong -> (how: episode, rows, histograms -> the same, spoiled; error)
    "episode index": (lambda e, r, h: (5, r, h), "expected episode 1, got 5"),
    "camera frames": (
        lambda e, r, h: (e, r, {k: v * 2 for k, v in h.items()}),
        "counts 20 frames, the data has 10",
    ),
    "missing camera": (
        lambda e, r, h: (e, r, {k: v for k, v in h.items() if k != "observation.images.cam0"}),
        "histograms for ['observation.images.cam1']",
    ),
    "missing feature": (
        lambda e, r, h: (e, other_rows({"observation.state": (6,)}), h),
        "rows have features [('observation.state', 6)]",
    ),
    "feature width": (
        lambda e, r, h: (e, other_rows({"observation.state": (6,), "action": (7,)}), h),
        "('action', 7)",
    ),
    "no frames": (lambda e, r, h: (e, EpisodeRows(FEATURES), h), "no frames"),
}


@pytest.mark.parametrize("what", SPOILED)
def test_commit_refuses_an_inconsistent_episode_and_writes_nothing(tmp_path, what):
    spoil, message = SPOILED[what]
    with open_writer(tmp_path / "ds") as w:
        record_episode(w, 10, ["a"], 0)
        before = file_digests(tmp_path / "ds")
        rows, histograms = record_episode(w, 10, ["a"], 1, commit=False)
        with pytest.raises(ValueError) as error:
            w.commit_episode(*spoil(1, rows, histograms))
        assert message in str(error.value)
    after = file_digests(tmp_path / "ds")
    assert {k: after[k] for k in before} == before
    new_files = set(after) - set(before)  # only the caller's own video files
    assert all(k.startswith("videos/") for k in new_files), new_files
    assert read_json(tmp_path / "ds/meta/info.json")["total_episodes"] == 1


# -- refusals change nothing -------------------------------------------------------------------
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


@pytest.mark.parametrize("refusal", ["another writer", "other settings", "not a dataset"])
def test_a_refused_open_changes_nothing_on_disk(tmp_path, refusal):
    root = tmp_path / "ds"
    running = None
    if refusal == "not a dataset":
        root.mkdir()
        (root / "notes.txt").write_text("mine")
    else:
        running = open_writer(root)
        record_episode(running, 5, ["a"], 0)
        if refusal == "other settings":
            running.close()
            (root / layout.LOCK_PATH).unlink()  # e.g. a copied dataset: not even a lock appears
    for path in unfinished_files(root):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written " + path.name.encode())
    before = every_file(root)
    folders = sorted(p for p in root.rglob("*") if p.is_dir())

    expected = {"another writer": UsageError, "other settings": ConfigError}
    with pytest.raises(expected.get(refusal, ConfigError)):
        open_writer(root, fps=15) if refusal == "other settings" else open_writer(root)

    assert every_file(root) == before, "a refused open changed files"
    assert sorted(p for p in root.rglob("*") if p.is_dir()) == folders
    if refusal != "another writer":
        assert not (root / layout.LOCK_PATH).exists()
    if running is not None:
        running.close()


def test_resume_removes_what_a_killed_recorder_left(tmp_path):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
    committed = file_digests(root)
    for path in unfinished_files(root):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written")
    layout.data_path(root, 1).write_bytes(b"never committed")
    open_writer(root).close()
    assert file_digests(root) == committed
    remove_unfinished(root, 1)  # the same path, called again, finds nothing to do
    assert file_digests(root) == committed


# -- a full disk -------------------------------------------------------------------------------
def failing_open(monkeypatch, file_name: str) -> None:
    """The atomic writer's open of `file_name` (its temporary) fails as on a full disk."""
    real_open = open

    def fake_open(path, *args, **kwargs):
        if Path(path).name == file_name + ".partial":
            raise OSError(28, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(files, "open", fake_open, raising=False)


@pytest.mark.parametrize("file_name", ["file-001.parquet", "stats.json", "info.json"])
def test_full_disk_raises_dataset_error_naming_the_file_and_commits_nothing(
    tmp_path, monkeypatch, file_name
):
    root, recorded = tmp_path / "ds", Recorded()
    with open_writer(root) as w:
        record_episode(w, 10, ["a"], 0, recorded)
        committed = file_digests(root)
        rows, histograms = record_episode(w, 10, ["a"], 1, recorded, commit=False)
        with monkeypatch.context() as patch:
            failing_open(patch, file_name)
            with pytest.raises(DatasetError) as error:
                w.commit_episode(1, rows, histograms)
        assert file_name in str(error.value) and "No space left on device" in str(error.value)
        assert isinstance(error.value, RuntimeError)
        assert (w.next_episode_index, w.next_frame_index) == (1, 10)
        assert read_json(root / "meta/info.json")["total_episodes"] == 1
        assert not [p for p in root.rglob("*.partial")]
        w.commit_episode(1, rows, histograms)  # the disk has room again
    assert {k: v for k, v in file_digests(root).items() if k in committed and "meta/" not in k} == {
        k: v for k, v in committed.items() if "meta/" not in k
    }
    stats = read_json(root / "meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")
    assert_loadable(root)


def test_discard_after_a_failed_commit_puts_tasks_and_stats_back(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 10, ["a"], 0)
        committed = file_digests(root)
        rows, histograms = record_episode(w, 10, ["b"], 1, commit=False)
        failing_open(monkeypatch, "info.json")  # tasks.parquet and stats.json were written
        with pytest.raises(DatasetError, match="info.json"):
            w.commit_episode(1, rows, histograms)
        assert file_digests(root) != committed
        w.discard_episode(1)
        assert file_digests(root) == committed


# -- settings ----------------------------------------------------------------------------------
def test_robot_type_and_feature_names_reach_info_json_and_resume_compares_them(tmp_path):
    root = tmp_path / "ds"
    names = {"action": ["shoulder_pan.pos", "b", "c", "d", "e", "gripper.pos"]}
    with open_writer(root, robot_type="so101", feature_names=names) as w:
        record_episode(w, 5, ["a"], 0)
    info = read_json(root / "meta/info.json")
    assert info["robot_type"] == "so101"
    assert info["features"]["action"]["names"] == names["action"]
    assert info["features"]["observation.state"]["names"] is None
    assert info["features"]["observation.images.cam0"]["names"] == ["height", "width", "channels"]
    open_writer(root).close()  # neither given: the dataset's are kept
    open_writer(root, robot_type="so101", feature_names=names).close()
    with pytest.raises(ConfigError, match="robot_type: expected 'koch', found 'so101'"):
        open_writer(root, robot_type="koch")
    renamed = {"action": ["x"] * 6}
    with pytest.raises(ConfigError, match="feature 'action' names: expected \\['x'"):
        open_writer(root, feature_names=renamed)
    assert read_json(root / "meta/info.json") == info


BAD_SETTINGS = {  # (cameras, features, feature_names) -> what the error must say
    "empty name": ({"": (4, 4, 3)}, {}, None, "camera name ''"),
    "dot": ({".": (4, 4, 3)}, {}, None, "camera name '.'"),
    "dot dot": ({"..": (4, 4, 3)}, {}, None, "camera name '..'"),
    "slash": ({}, {"a/b": (2,)}, None, "feature name 'a/b'"),
    "NUL": ({"c\0": (4, 4, 3)}, {}, None, "without '/' or NUL"),
    "long": ({"c" * 300: (4, 4, 3)}, {}, None, "at most 200 bytes"),
    "zero dimension": ({}, {"state": (0,)}, None, "feature 'state': expected a vector shape"),
    "two dimensions": ({}, {"state": (2, 3)}, None, "feature 'state'"),
    "gray camera": ({"cam": (4, 4)}, {}, None, "camera 'cam': expected shape (height, width, 3)"),
    "zero height": ({"cam": (0, 4, 3)}, {}, None, "height, width >= 1"),
    "RGBA": ({"cam": (4, 4, 4)}, {}, None, "camera 'cam'"),
    "reserved": ({}, {"index": (1,)}, None, "adds to every item): ['index']"),
    "both": ({"x": (4, 4, 3)}, {"x": (2,)}, None, "both as camera and feature: ['x']"),
    "names count": ({}, {"state": (3,)}, {"state": ["a", "b"]}, "['state']: 2 names for 3"),
    "names of nothing": ({}, {"state": (1,)}, {"arm": ["a"]}, "'arm' is not a feature"),
}


@pytest.mark.parametrize("what", BAD_SETTINGS)
def test_check_names_refuses_what_the_dataset_could_not_hold(tmp_path, what):
    cameras, features, feature_names, message = BAD_SETTINGS[what]
    with pytest.raises(ConfigError) as error:
        check_names(cameras, features, feature_names)
    assert message in str(error.value)
    with pytest.raises(ValueError):
        open_writer(
            tmp_path / "ds", cameras=cameras, features=features, feature_names=feature_names
        )
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("fps", [True, 0, 2.5, "30"])
def test_fps_must_be_a_whole_number(tmp_path, fps):
    with pytest.raises(ConfigError, match="fps"):
        open_writer(tmp_path / "ds", fps=fps)


def test_numpy_integer_fps_is_written_as_a_number(tmp_path):
    open_writer(tmp_path / "ds", fps=np.int64(30)).close()
    assert read_json(tmp_path / "ds/meta/info.json")["fps"] == 30


# -- rows and what a commit returns ------------------------------------------------------------
def test_rows_grow_only_in_ensure_room_and_append_needs_room():
    rows = EpisodeRows({"s": (2,)}, initial_capacity=2)
    for i in range(2):
        rows.append({"s": np.full(2, i, np.float32)}, 0)
    with pytest.raises(UsageError, match="ensure_room"):
        rows.append({"s": np.zeros(2, np.float32)}, 0)
    assert rows.num_frames == 2
    rows.ensure_room()
    with pytest.raises(ValueError):  # a value that does not fit adds no row
        rows.append({"s": np.zeros(3, np.float32)}, 0)
    assert rows.num_frames == 2
    rows.append({"s": np.full(2, 2, np.float32)}, 1)
    rows.reserve(100)
    np.testing.assert_array_equal(rows.values("s")[:, 0], [0, 1, 2])
    np.testing.assert_array_equal(rows.task_indices(), [0, 0, 1])


def test_commit_writes_the_data_file_once_and_reports_its_timings(tmp_path, monkeypatch):
    reads = []
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: reads.append(a) or None)
    monkeypatch.setattr(pq, "read_metadata", lambda *a, **k: reads.append(a) or None)
    with open_writer(tmp_path / "ds") as w:
        committed = record_episode(w, 12, ["a"], 0)
    assert reads == [], "commit_episode read a file back"
    monkeypatch.undo()
    assert committed.data_path == str(layout.data_path(tmp_path / "ds", 0))
    data = pq.read_table(committed.data_path)
    assert data.column("index").to_pylist() == list(range(12))
    assert set(committed.timings) == {"data", "stats", "meta", "commit", "total"}
    assert committed.timings["commit"] <= committed.timings["meta"]
    assert all(t >= 0 for t in committed.timings.values())
    parts = committed.timings["data"] + committed.timings["stats"] + committed.timings["meta"]
    assert parts <= committed.timings["total"]
    assert list(committed.stats) == list(read_json(tmp_path / "ds/meta/info.json")["features"])


def test_a_commit_syncs_every_file_and_folder_it_changed_and_parents_only_of_new_folders(
    tmp_path, monkeypatch
):
    """Durable before counted, without re-syncing what is durable already: the first commit
    syncs up to the root's parent (its folders are new), a later one only the folders that
    gained a file, and the videos (files it writes itself are synced as they are written)."""
    synced = []
    real = files._fsync
    monkeypatch.setattr(files, "_fsync", lambda p, flags=0: synced.append(p) or real(p, flags))
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
        first = set(synced)
        synced.clear()
        record_episode(w, 4, ["a"], 1)
    assert {root, tmp_path, root / "videos", root / "meta"} <= first
    folders = {p for p in synced if p.is_dir()}
    changed = {layout.data_path(root, 1).parent, layout.episodes_path(root, 1).parent,
               layout.histograms_path(root, 1).parent, root / "meta", root / layout.SHMPIPE_DIR,
               *(layout.video_path(root, name, 1).parent for name in CAMERAS)}  # fmt: skip
    assert folders == changed
    assert {layout.video_path(root, name, 1) for name in CAMERAS} <= set(synced)
