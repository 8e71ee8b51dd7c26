"""A LeRobot v3.0 dataset on disk that grows one committed episode at a time.

Each episode has files of its own (data, one video per camera, a meta/episodes row, its image
histograms), each written under a temporary name and renamed, so saving costs O(that episode).
`meta/info.json` is written last and is the commit point: files it does not count are not part of
the dataset, and reopening removes them. Dataset stats are exact, not averaged: images from the
summed 3x256 histograms, numeric columns from all their values, kept sorted per dimension.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe import layout
from shmpipe.column_values import ColumnValues, Stats
from shmpipe.episode_rows import INDEX_COLUMNS
from shmpipe.image_stats import (
    HISTOGRAM_BINS,
    STAT_KEYS,
    downsample_factor,
    stats_from_histograms,
)

CODEBASE_VERSION = "v3.0"
# LeRobot's file size limits, recorded as LeRobot records them; our files hold one episode each.
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
SHMPIPE_FORMAT = 1
INTEGER_COLUMNS = ("frame_index", "episode_index", "index", "task_index")
TIMESTAMP_TOLERANCE_S = 1e-4  # LeRobot's own tolerance between a row's timestamp and i / fps
CAMERA_CHANNELS = 3
# tasks.parquet as pandas writes a frame indexed by task text (LeRobot reads it with pandas).
PANDAS_VERSION = "2.3.3"


@dataclass(frozen=True)
class CommittedEpisode:
    """What commit_episode wrote: the episode's tasks and stats, and seconds per step."""

    episode_index: int
    length: int
    tasks: list[str]
    stats: dict[str, Stats]
    timings: dict[str, float]


class DatasetWriter:
    """Appends episodes to the LeRobot v3.0 dataset at `root`; one writer per root at a time.

    The caller puts an episode's video and data files in place (layout.video_path,
    layout.data_path with the episode index as file number) and then calls commit_episode, which
    writes the metadata and makes the episode part of the dataset, or discard_episode, which
    deletes them. Use `open`, not the constructor; `close` releases the dataset.
    """

    def __init__(self, root: Path, info: dict, lock: IO[bytes]) -> None:
        self.root = root
        self._info = info
        self._lock = lock
        features = info["features"]
        self.fps: int = info["fps"]
        self.cameras = {n: tuple(f["shape"]) for n, f in features.items() if f["dtype"] == "video"}
        self.features = {
            n: tuple(f["shape"])
            for n, f in features.items()
            if f["dtype"] != "video" and n not in INDEX_COLUMNS
        }
        self.next_episode_index: int = info["total_episodes"]
        self.next_frame_index: int = info["total_frames"]
        self._tasks: dict[str, int] = {}
        self._tasks_saved = 0
        self._histograms = {
            name: np.zeros((CAMERA_CHANNELS, HISTOGRAM_BINS), np.int64) for name in self.cameras
        }
        self._values = {
            name: ColumnValues.empty(_width(shape)) for name, shape in self._numeric().items()
        }

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        root: str | os.PathLike,
        fps: int,
        cameras: Mapping[str, tuple[int, int, int]],
        features: Mapping[str, tuple[int, ...]],
        video: Mapping[str, object],
        robot_type: str | None = None,
    ) -> DatasetWriter:
        """Create a dataset at `root` (absent or empty) or resume the one there.

        `video` is the encoder's settings (VideoEncoderConfig.as_dict()). Resuming checks that
        fps, cameras, features and video settings match the dataset's (ValueError naming each
        difference), removes files of episodes that were never committed, and reloads what exact
        stats need: every episode's image histograms and all data rows, read once.
        """
        root = Path(root)
        _check_names(cameras, features)
        wanted = _new_info(fps, cameras, features, video, robot_type)
        info_path = root / layout.INFO_PATH
        if not info_path.exists():
            _require_empty(root)
        lock = _take_lock(root)
        try:
            if not info_path.exists():
                writer = cls(root, wanted, lock)
                writer._write_info(wanted)
                return writer
            found = json.loads(info_path.read_text())
            problems = _differences(wanted, found, robot_type is not None)
            if problems:
                raise ValueError(
                    f"{root}: the dataset there was recorded with other settings:\n  "
                    + "\n  ".join(problems)
                )
            writer = cls(root, found, lock)
            writer._remove_uncommitted()
            writer._reload()
            return writer
        except BaseException:
            lock.close()
            raise

    def _numeric(self) -> dict[str, tuple[int, ...]]:
        """Numeric columns with exact stats: the features, then LeRobot's index columns."""
        return {**self.features, **{name: (1,) for name in INDEX_COLUMNS}}

    def _remove_uncommitted(self) -> None:
        """Delete files of episodes >= total_episodes and half-written temporaries."""
        committed = self.next_episode_index
        folders = [
            self.root / "data",
            self.root / "meta" / "episodes",
            self.root / layout.HISTOGRAMS_DIR,
        ]
        folders += [self.root / "videos" / name for name in self.cameras]
        for folder in folders:
            for path in folder.glob("chunk-*/file-*"):
                number = layout.file_number(path)
                if number is None or number >= committed:
                    path.unlink(missing_ok=True)
        for path in (self.root / "meta").glob("*.partial"):
            path.unlink(missing_ok=True)

    def _reload(self) -> None:
        """Read back tasks, histograms and data rows of the committed episodes."""
        tasks_path = self.root / layout.TASKS_PATH
        texts: list[str] = []
        if tasks_path.exists():
            table = pq.read_table(tasks_path)
            texts = table.column("__index_level_0__").to_pylist()
            if table.column("task_index").to_pylist() != list(range(len(texts))):
                raise ValueError(f"{tasks_path}: task_index is not 0..{len(texts) - 1} in order")
        total_tasks = self._info["total_tasks"]
        if len(texts) < total_tasks:
            raise ValueError(f"{tasks_path}: {len(texts)} tasks, info.json counts {total_tasks}")
        if len(texts) > total_tasks:  # saved for an episode that was never committed
            texts = texts[:total_tasks]
            _write_atomically(tasks_path, _tasks_writer(texts))
        self._tasks = {text: i for i, text in enumerate(texts)}
        self._tasks_saved = len(texts)
        episodes = range(self.next_episode_index)
        if not episodes:
            return
        needed = [layout.histograms_path(self.root, e) for e in episodes]
        needed += [layout.data_path(self.root, e) for e in episodes]
        absent = [str(p.relative_to(self.root)) for p in needed if not p.is_file()]
        if absent:
            raise ValueError(
                f"{self.root}: meta/info.json counts {len(episodes)} episodes but "
                f"{len(absent)} of their files are missing, e.g. {absent[:3]}"
            )
        for episode in episodes:
            path = layout.histograms_path(self.root, episode)
            with np.load(path) as saved:
                for name in self.cameras:
                    self._histograms[name] += saved[name]
        columns = list(self._numeric())
        tables = [pq.read_table(layout.data_path(self.root, e), columns=columns) for e in episodes]
        table = pa.concat_tables(tables)
        if table.num_rows != self.next_frame_index:
            raise ValueError(
                f"{self.root}: data files hold {table.num_rows} rows, "
                f"meta/info.json counts total_frames={self.next_frame_index}"
            )
        for name, shape in self._numeric().items():
            self._values[name] = ColumnValues.of(_column_rows(table.column(name), _width(shape)))
        stats = self._dataset_stats(self._histograms, self._values)
        stats_path = self.root / layout.STATS_PATH
        if _counts(stats_path) != {name: s["count"].tolist() for name, s in stats.items()}:
            # Written for an episode that info.json never counted: put it back in step.
            _write_atomically(stats_path, _text_writer(_stats_json(stats)))

    # -- recording -------------------------------------------------------------------------
    def task_index(self, task: str) -> int:
        """The index of `task`; a new task gets the next one (saved at the next commit)."""
        return self._tasks.setdefault(task, len(self._tasks))

    def commit_episode(
        self,
        episode_index: int,
        columns: Mapping[str, np.ndarray],
        image_histograms: Mapping[str, np.ndarray],
    ) -> CommittedEpisode:
        """Make episode `episode_index` part of the dataset; its video and data files must exist.

        columns: the episode's data columns (EpisodeRows.columns): every feature (frames, dims)
        and timestamp, frame_index, episode_index, index, task_index (frames,).
        image_histograms: camera -> (3, 256) int64 counts of the episode's downsampled pixels.
        Writes the histograms, the meta/episodes row, tasks.parquet (if a task is new),
        meta/stats.json, then meta/info.json. If any write fails, nothing is committed and the
        same episode can be committed again.
        """
        t0 = time.perf_counter()
        length = self._check_episode(episode_index, columns, image_histograms)
        values = {
            name: ColumnValues.of(_column_rows(columns[name], _width(shape)))
            for name, shape in self._numeric().items()
        }
        histograms = {name: np.asarray(image_histograms[name], np.int64) for name in self.cameras}
        stats = self._episode_stats(histograms, values)
        task_indices = dict.fromkeys(np.asarray(columns["task_index"]).tolist())
        texts = list(self._tasks)
        tasks = [texts[i] for i in task_indices]

        t1 = time.perf_counter()
        _write_atomically(
            layout.histograms_path(self.root, episode_index),
            lambda f: np.savez(f, **histograms),
        )
        row = self._episodes_row(episode_index, length, tasks, stats)
        _write_atomically(
            layout.episodes_path(self.root, episode_index), lambda f: pq.write_table(row, f)
        )
        t2 = time.perf_counter()
        new_tasks = len(texts) > self._tasks_saved
        if new_tasks:
            _write_atomically(self.root / layout.TASKS_PATH, _tasks_writer(texts))
        t3 = time.perf_counter()
        merged_histograms = {name: self._histograms[name] + histograms[name] for name in histograms}
        merged_values = {name: self._values[name].merged(values[name]) for name in values}
        dataset_stats = self._dataset_stats(merged_histograms, merged_values)
        _write_atomically(self.root / layout.STATS_PATH, _text_writer(_stats_json(dataset_stats)))
        t4 = time.perf_counter()
        info = dict(self._info)
        info["total_episodes"] = episode_index + 1
        info["total_frames"] = self.next_frame_index + length
        info["total_tasks"] = len(texts)
        info["splits"] = {"train": f"0:{episode_index + 1}"}
        self._write_info(info)
        t5 = time.perf_counter()

        # Committed: only now does the writer's state move on.
        self._info = info
        self._histograms, self._values = merged_histograms, merged_values
        self._tasks_saved = len(texts)
        self.next_episode_index = episode_index + 1
        self.next_frame_index += length
        timings = {
            "check": t1 - t0,
            "episode_files": t2 - t1,
            "tasks": t3 - t2,
            "stats": t4 - t3,
            "info": t5 - t4,
            "total": t5 - t0,
        }
        return CommittedEpisode(episode_index, length, tasks, stats, timings)

    def discard_episode(self, episode_index: int) -> None:
        """Delete the files of an episode that will not be committed (cancelled, or its commit
        failed): data, videos (with unfinished segments), and whatever commit_episode wrote.
        Tasks first seen since the last commit are forgotten too; add_frame registers them again.
        """
        if episode_index < self.next_episode_index:
            raise ValueError(f"discard_episode: episode {episode_index} is committed")
        paths = [
            layout.data_path(self.root, episode_index),
            layout.episodes_path(self.root, episode_index),
            layout.histograms_path(self.root, episode_index),
        ]
        paths += [layout.video_path(self.root, c, episode_index) for c in self.cameras]
        for path in paths:
            for leftover in path.parent.glob(path.name + "*"):  # the file and its temporaries
                leftover.unlink(missing_ok=True)
        self._tasks = dict(list(self._tasks.items())[: self._tasks_saved])

    def close(self) -> None:
        """Let another writer open this dataset. Writes nothing."""
        self._lock.close()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- checks ----------------------------------------------------------------------------
    def _check_episode(
        self,
        episode_index: int,
        columns: Mapping[str, np.ndarray],
        image_histograms: Mapping[str, np.ndarray],
    ) -> int:
        """The episode's length, after checking that everything about it agrees."""
        if episode_index != self.next_episode_index:
            raise ValueError(
                f"commit_episode: expected episode {self.next_episode_index}, got {episode_index}"
            )
        length = self._check_columns(episode_index, columns)
        self._check_histograms(image_histograms, length)
        self._check_files(episode_index, length)
        return length

    def _check_columns(self, episode_index: int, columns: Mapping[str, np.ndarray]) -> int:
        missing = [name for name in self._numeric() if name not in columns]
        if missing:
            raise ValueError(f"commit_episode: missing columns {missing}")
        length = len(columns["index"])
        if length == 0:
            raise ValueError("commit_episode: the episode has no frames")
        frames = np.arange(length)
        expected = {
            "frame_index": frames,
            "episode_index": np.full(length, episode_index),
            "index": frames + self.next_frame_index,
        }
        for name, want in expected.items():
            if not np.array_equal(columns[name], want):
                raise ValueError(
                    f"commit_episode: column {name} should be {want[0]}..{want[-1]}, "
                    f"got {np.asarray(columns[name])[[0, -1]].tolist()} (first, last)"
                )
        error = np.abs(np.asarray(columns["timestamp"], np.float64) - frames / self.fps)
        if error.max() > TIMESTAMP_TOLERANCE_S:
            raise ValueError(
                f"commit_episode: timestamp of frame {int(error.argmax())} is "
                f"{error.max():.6f} s off frame_index / fps"
            )
        task_index = np.asarray(columns["task_index"])
        if task_index.min() < 0 or task_index.max() >= len(self._tasks):
            raise ValueError(
                f"commit_episode: task_index outside 0..{len(self._tasks) - 1}; "
                "get indices from task_index()"
            )
        for name, shape in self.features.items():
            got = np.shape(columns[name])
            if got != (length, _width(shape)):
                raise ValueError(
                    f"commit_episode: feature {name!r} has shape {got}, "
                    f"expected ({length}, {_width(shape)})"
                )
        return length

    def _check_histograms(self, image_histograms: Mapping[str, np.ndarray], length: int) -> None:
        """Every camera counted exactly `length` frames: as many as the data has rows."""
        if set(image_histograms) != set(self.cameras):
            raise ValueError(
                f"commit_episode: histograms for {sorted(image_histograms)}, "
                f"cameras are {sorted(self.cameras)}"
            )
        for name, (height, width, _) in self.cameras.items():
            hist = np.asarray(image_histograms[name])
            if hist.shape != (CAMERA_CHANNELS, HISTOGRAM_BINS):
                raise ValueError(f"commit_episode: camera {name!r} histogram shape {hist.shape}")
            stride = downsample_factor(height, width)
            per_frame = -(-height // stride) * -(-width // stride)
            counted = hist.sum(axis=1)
            if not np.all(counted == length * per_frame):
                raise ValueError(
                    f"commit_episode: camera {name!r} histogram counts {counted[0] // per_frame} "
                    f"frames, the data has {length}"
                )

    def _check_files(self, episode_index: int, length: int) -> None:
        data = layout.data_path(self.root, episode_index)
        needed = [data] + [layout.video_path(self.root, c, episode_index) for c in self.cameras]
        absent = [str(p.relative_to(self.root)) for p in needed if not p.is_file()]
        if absent:
            raise ValueError(f"commit_episode: files not in place: {absent}")
        rows = pq.read_metadata(data).num_rows
        if rows != length:
            raise ValueError(f"commit_episode: {data} has {rows} rows, the episode {length}")

    # -- what gets written -----------------------------------------------------------------
    def _episode_stats(
        self, histograms: dict[str, np.ndarray], values: dict[str, ColumnValues]
    ) -> dict[str, Stats]:
        """Stats in LeRobot's episode order: features, index columns, then cameras."""
        stats = {name: v.stats(integer=name in INTEGER_COLUMNS) for name, v in values.items()}
        stats.update({name: stats_from_histograms(h) for name, h in histograms.items()})
        return stats

    def _dataset_stats(
        self, histograms: dict[str, np.ndarray], values: dict[str, ColumnValues]
    ) -> dict[str, Stats]:
        """Stats over every committed frame, keyed in info.json's feature order."""
        stats = self._episode_stats(histograms, values)
        return {name: stats[name] for name in self._info["features"]}

    def _episodes_row(
        self, episode: int, length: int, tasks: list[str], stats: dict[str, Stats]
    ) -> pa.Table:
        """The episode's one-row meta/episodes table, LeRobot's columns and types."""
        chunk, file = layout.chunk_and_file(episode)
        duration = length / self.fps
        cols: dict[str, tuple[pa.DataType, object]] = {
            "episode_index": (pa.int64(), episode),
            "tasks": (pa.list_(pa.string()), tasks),
            "length": (pa.int64(), length),
            "data/chunk_index": (pa.int64(), chunk),
            "data/file_index": (pa.int64(), file),
            "dataset_from_index": (pa.int64(), self.next_frame_index),
            "dataset_to_index": (pa.int64(), self.next_frame_index + length),
        }
        for name in self.cameras:
            cols[f"videos/{name}/chunk_index"] = (pa.int64(), chunk)
            cols[f"videos/{name}/file_index"] = (pa.int64(), file)
            cols[f"videos/{name}/from_timestamp"] = (pa.float64(), 0.0)
            cols[f"videos/{name}/to_timestamp"] = (pa.float64(), duration)
        for name, feature_stats in stats.items():
            for key in STAT_KEYS:
                value = feature_stats[key]
                cols[f"stats/{name}/{key}"] = (_stat_type(value), value.tolist())
        cols["meta/episodes/chunk_index"] = (pa.int64(), chunk)
        cols["meta/episodes/file_index"] = (pa.int64(), file)
        arrays = [pa.array([value], type) for type, value in cols.values()]
        return pa.Table.from_arrays(arrays, names=list(cols))

    def _write_info(self, info: dict) -> None:
        _write_atomically(
            self.root / layout.INFO_PATH, _text_writer(json.dumps(info, indent=4) + "\n")
        )


# -- info.json ---------------------------------------------------------------------------------
def _codec_name(vcodec: str) -> str:
    """The stream's codec as a reader reports it (libsvtav1 -> av1), as LeRobot records it."""
    try:
        codec = av.codec.Codec(vcodec, "w")
    except ValueError:  # not an encoder this PyAV knows: record the name as given
        return vcodec
    return codec.canonical_name or codec.name


def _new_info(
    fps: int,
    cameras: Mapping[str, tuple[int, int, int]],
    features: Mapping[str, tuple[int, ...]],
    video: Mapping[str, object],
    robot_type: str | None,
) -> dict:
    """info.json of an empty dataset, in LeRobot's key order, plus our own "shmpipe" block."""
    video = _plain(dict(video))
    entries: dict[str, dict] = {}
    for name, (height, width, channels) in cameras.items():
        entries[name] = {
            "dtype": "video",
            "shape": [height, width, channels],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": height,
                "video.width": width,
                "video.codec": _codec_name(str(video.get("vcodec"))),
                "video.pix_fmt": video.get("pix_fmt"),
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": channels,
                "has_audio": False,
            },
        }
    for name, shape in features.items():
        entries[name] = {"dtype": "float32", "shape": list(shape), "names": None}
    for name in INDEX_COLUMNS:
        dtype = "float32" if name == "timestamp" else "int64"
        entries[name] = {"dtype": dtype, "shape": [1], "names": None}
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": layout.CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": fps,
        "splits": {},
        "data_path": layout.DATA_PATH,
        "video_path": layout.VIDEO_PATH,
        "features": entries,
        "shmpipe": {
            "format": SHMPIPE_FORMAT,
            "layout": "one file per episode: file number = episode index",
            "image_histograms_path": layout.HISTOGRAMS_PATH,
            "video_encoder": video,
        },
    }


def _differences(wanted: dict, found: dict, check_robot_type: bool) -> list[str]:
    """Each setting in which `found` (an existing info.json) differs from `wanted`."""
    out: list[str] = []

    def compare(what: str, expected: object, got: object) -> None:
        if expected != got:
            out.append(f"{what}: expected {expected!r}, found {got!r}")

    if found.get("codebase_version") != CODEBASE_VERSION or "shmpipe" not in found:
        version = found.get("codebase_version")
        return [f"not a dataset written by shmpipe ({CODEBASE_VERSION}): found {version!r}"]
    compare("fps", wanted["fps"], found.get("fps"))
    if check_robot_type:
        compare("robot_type", wanted["robot_type"], found.get("robot_type"))
    want_f, found_f = wanted["features"], found.get("features", {})
    for kind, cameras in (("cameras", True), ("features", False)):
        compare(kind, _names(want_f, cameras), _names(found_f, cameras))
    for name in [n for n in want_f if n in found_f]:
        want, got = want_f[name], found_f[name]
        kind = "camera" if _is_camera(want) else "feature"
        for key in ("dtype", "shape", "names"):
            compare(f"{kind} {name!r} {key}", want[key], got.get(key))
        for key, value in want.get("info", {}).items():
            if key not in _FOLLOWS_FROM_SHAPE_AND_FPS:
                compare(f"{kind} {name!r} {key}", value, got.get("info", {}).get(key))
    want_video = wanted["shmpipe"]["video_encoder"]
    found_video = found["shmpipe"].get("video_encoder", {})
    for key in dict.fromkeys([*want_video, *found_video]):
        compare(f"video encoder {key}", want_video.get(key), found_video.get(key))
    return out


_FOLLOWS_FROM_SHAPE_AND_FPS = ("video.height", "video.width", "video.channels", "video.fps")


def _is_camera(entry: dict) -> bool:
    return entry.get("dtype") == "video"


def _names(entries: dict[str, dict], cameras: bool) -> list[str]:
    """Camera names, or names of the recorded features (not LeRobot's index columns)."""
    return sorted(
        n for n, f in entries.items() if _is_camera(f) == cameras and n not in INDEX_COLUMNS
    )


def _check_names(
    cameras: Mapping[str, tuple[int, ...]], features: Mapping[str, tuple[int, ...]]
) -> None:
    for name in [*cameras, *features]:
        if "/" in name:
            raise ValueError(f"{name!r}: LeRobot feature names cannot contain '/'")
    for name, shape in cameras.items():
        if len(shape) != 3 or shape[2] != CAMERA_CHANNELS:
            raise ValueError(f"camera {name!r}: expected shape (height, width, 3), got {shape}")
    for name, shape in features.items():
        if len(shape) != 1:
            raise ValueError(
                f"feature {name!r}: shape {shape}; only vectors (one dimension) are supported"
            )
    reserved = (set(cameras) | set(features)) & set(INDEX_COLUMNS)
    if reserved:
        raise ValueError(f"names reserved for LeRobot's index columns: {sorted(reserved)}")
    both = set(cameras) & set(features)
    if both:
        raise ValueError(f"names used both as camera and feature: {sorted(both)}")


# -- files -------------------------------------------------------------------------------------
def _require_empty(root: Path) -> None:
    """A new dataset goes into an absent or empty folder (our own lock file aside)."""
    if not root.exists():
        return
    lock = root / layout.LOCK_PATH
    stray = next((p for p in root.rglob("*") if p != lock and not p.is_dir()), None)
    if stray is not None:
        raise ValueError(
            f"{root} has no {layout.INFO_PATH} but is not empty (e.g. {stray}); "
            "record into an empty folder or an existing dataset"
        )


def _take_lock(root: Path) -> IO[bytes]:
    path = root / layout.LOCK_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path, "ab")  # held (and the lock with it) until close()
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RuntimeError(f"{root} is open for recording by another writer") from None
    return lock


def _write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` through a temporary file and a rename: it is complete or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as f:
            write(f)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _text_writer(text: str) -> Callable[[IO[bytes]], None]:
    return lambda f: f.write(text.encode())


def _counts(stats_path: Path) -> dict[str, list[int]] | None:
    """The `count` of every feature in a stats.json, or None if it is absent or unreadable."""
    try:
        return {name: s["count"] for name, s in json.loads(stats_path.read_text()).items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _tasks_writer(texts: list[str]) -> Callable[[IO[bytes]], None]:
    """tasks.parquet as LeRobot writes it: pandas frame of task_index, indexed by task text."""
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": PANDAS_VERSION,
    }
    schema = pa.schema(
        [("task_index", pa.int64()), ("__index_level_0__", pa.string())],
        metadata={"pandas": json.dumps(pandas_meta)},
    )
    table = pa.table([pa.array(range(len(texts)), pa.int64()), pa.array(texts)], schema=schema)
    return lambda f: pq.write_table(table, f)


# -- small helpers -----------------------------------------------------------------------------
def _width(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape))


def _column_rows(column: np.ndarray | pa.ChunkedArray, width: int) -> np.ndarray:
    """(frames, width) values of a column given as numpy or arrow (plain or fixed-size lists)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            column = column.flatten()
        column = column.to_numpy()
    return np.asarray(column).reshape(-1, width)


def _stat_type(value: np.ndarray) -> pa.DataType:
    """LeRobot's column type for a stat: nested lists as deep as the array, int64 or double."""
    type_ = pa.int64() if np.issubdtype(value.dtype, np.integer) else pa.float64()
    for _ in range(value.ndim):
        type_ = pa.list_(type_)
    return type_


def _stats_json(stats: dict[str, Stats]) -> str:
    plain = {name: {key: s[key].tolist() for key in STAT_KEYS} for name, s in stats.items()}
    return json.dumps(plain, indent=4) + "\n"


def _plain(value: object) -> object:
    """JSON's view of `value` (tuples become lists), so settings compare as they are stored."""
    return json.loads(json.dumps(value))
