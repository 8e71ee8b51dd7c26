"""meta/info.json, its one owner: the names and shapes a dataset may hold, and the file itself.

check_names refuses, before anything is written, every camera or feature that would fail
later (a name that is no folder name, a shape LeRobot cannot store). new_info builds an empty
dataset's info.json in LeRobot's key order, with_episode counts a committed episode into its
totals, info_text is its text, and stage_info / write_info write it (the only writers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import av

from shmpipe import depth
from shmpipe.dataset import capture_times, layout
from shmpipe.dataset.feature_types import FeatureSpec, from_info, specs_of
from shmpipe.dataset.files import publish, sync_folders, write_unpublished
from shmpipe.dataset.rows import INDEX_COLUMNS
from shmpipe.dataset.untrusted import DamagedDatasetError, info_problems, read_json
from shmpipe.errors import ConfigError

CODEBASE_VERSION = "v3.0"
# LeRobot's file size limits, recorded as LeRobot records them; our files hold one episode each.
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
SHMPIPE_FORMAT = 1
CAMERA_CHANNELS = 3
# A camera's name is a folder name (videos/<name>/...): most file systems allow 255 bytes.
MAX_NAME_BYTES = 200


def check_names(
    cameras: Mapping[str, Sequence[int]],
    features: Mapping[str, tuple],
    feature_names: Mapping[str, Sequence[str]] | None = None,
    capture: bool = False,
) -> None:
    """Raise ConfigError, naming the camera or feature and what was expected, for a setting
    the dataset could not hold. feature_names: feature -> one name per dimension; `capture`:
    the dataset stores capture times (their columns' names are then taken)."""
    for kind, entries in (("camera", cameras), ("feature", features)):
        for name in entries:
            _check_name(kind, name)
    for name, shape in cameras.items():
        if not _is_shape(shape, 3) or shape[2] not in (CAMERA_CHANNELS, depth.CHANNELS):
            raise ConfigError(
                f"camera {name!r}: expected shape (height, width, 3) (RGB) or (height, width, 1) "
                f"(depth) with height, width >= 1, got {shape!r}"
            )
    features = specs_of(features)  # (n,) means float32
    for name, spec in features.items():
        if not _is_shape(spec.shape, 1):
            raise ConfigError(
                f"feature {name!r}: expected a vector shape (n,) with n >= 1, got {spec.shape!r}"
            )
    reserved = (set(cameras) | set(features)) & {*INDEX_COLUMNS, "task"}
    if reserved:
        raise ConfigError(f"names reserved for LeRobot's own columns (its index columns, and "
                          f"'task' that its loader adds to every item): {sorted(reserved)}")
    taken = (set(cameras) | set(features)) & {capture_times.column(c) for c in cameras}
    if capture and taken:
        raise ConfigError(f"names reserved for the capture times (capture_times=True stores "
                          f"camera X's as 'capture_time.X'): {sorted(taken)}; rename them")
    both = set(cameras) & set(features)
    if both:
        raise ConfigError(f"names used both as camera and feature: {sorted(both)}")
    for name, dims in (feature_names or {}).items():
        if name not in features:
            raise ConfigError(f"feature_names: {name!r} is not a feature; features: {[*features]}")
        if isinstance(dims, str) or not all(isinstance(d, str) for d in dims):
            raise ConfigError(f"feature_names[{name!r}]: expected a list of strings, got {dims!r}")
        if len(dims) != features[name].shape[0]:
            raise ConfigError(
                f"feature_names[{name!r}]: {len(dims)} names for {features[name].shape[0]} "
                "dimensions"
            )


def check_fps(fps: object) -> int:
    """fps as an int: a whole number >= 1 (numpy integers too, bools not)."""
    if isinstance(fps, bool) or not hasattr(fps, "__index__") or fps < 1:
        raise ConfigError(f"fps: expected a whole number of frames per second >= 1, got {fps!r}")
    return int(fps)


def read_info(path: Path) -> dict:
    """An info.json whose fields can be used (untrusted.info_problems); DamagedDatasetError
    (a ConfigError) naming the file and each problem otherwise."""
    info = read_json(path, str(path))
    problems = info_problems(info)
    if problems:
        raise DamagedDatasetError(f"{path}: " + "; ".join(problems))
    return info


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str):
        raise ConfigError(f"{kind} name {name!r}: expected a string")
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ConfigError(
            f"{kind} name {name!r}: expected a non-empty name without '/' or NUL, "
            "other than '.' and '..'"
        )
    if kind == "camera" and len(name.encode()) > MAX_NAME_BYTES:
        raise ConfigError(
            f"camera name {name[:40]!r}...: {len(name.encode())} UTF-8 bytes; a camera's name "
            f"becomes a folder name, so at most {MAX_NAME_BYTES} bytes"
        )


def _is_shape(shape: object, ndim: int) -> bool:
    """A tuple or list of `ndim` positive integers (bools are not sizes)."""
    if not isinstance(shape, tuple | list) or len(shape) != ndim:
        return False
    return all(hasattr(d, "__index__") and not isinstance(d, bool) and d >= 1 for d in shape)


def new_info(fps: int, cameras: Mapping[str, Sequence[int]], features: Mapping[str, tuple],
             video: Mapping[str, object], robot_type: str | None = None,
             feature_names: Mapping[str, Sequence[str]] | None = None,
             capture: bool = False) -> dict:  # fmt: skip
    """info.json of an empty dataset, in LeRobot's key order, plus our own "shmpipe" block.
    `capture`: one capture-time column per camera (shmpipe.dataset.capture_times)."""
    video = json.loads(json.dumps(dict(video)))  # as stored (tuples become lists), to compare
    entries: dict[str, dict] = {}
    for name, shape in cameras.items():
        height, width, channels = (int(d) for d in shape)
        if channels == depth.CHANNELS:
            entries[name] = {"dtype": "video", "shape": [height, width, channels],
                             "names": ["height", "width", "channels"],
                             "info": depth.feature_info(height, width, fps)}  # fmt: skip
            continue
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
    names = feature_names or {}
    for name, spec in specs_of(features).items():
        entries[name] = spec.info_entry(list(names[name]) if name in names else None)
    for camera in cameras if capture else ():
        entries[capture_times.column(camera)] = capture_times.feature_entry()
    for name in INDEX_COLUMNS:
        dtype = "float32" if name == "timestamp" else "int64"
        entries[name] = {"dtype": dtype, "shape": [1], "names": None}
    info = {
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
    if capture:
        info["shmpipe"][capture_times.INFO_KEY] = list(cameras)
    return info


def _codec_name(vcodec: str) -> str:
    """The stream's codec as a reader reports it (libsvtav1 -> av1), as LeRobot records it."""
    try:
        codec = av.codec.Codec(vcodec, "w")
    except ValueError:  # not an encoder this PyAV knows: record the name as given
        return vcodec
    return codec.canonical_name or codec.name


def shapes(info: dict) -> tuple[dict[str, tuple[int, ...]], dict[str, FeatureSpec]]:
    """(cameras, features) of an info.json, camera -> shape and feature -> FeatureSpec, in its
    order; no index columns and no capture-time columns. ConfigError naming a feature shmpipe
    cannot record (shmpipe.dataset.feature_types.from_info)."""
    entries = info["features"]
    skip = {*INDEX_COLUMNS, *capture_times.columns_of(info)}
    cameras = {n: tuple(f["shape"]) for n, f in entries.items() if is_camera(f)}
    features = {
        n: from_info(n, f) for n, f in entries.items() if not is_camera(f) and n not in skip
    }
    return cameras, features


def is_camera(entry: object) -> bool:
    """The one rule for "this feature is a camera": LeRobot stores it as a video."""
    return isinstance(entry, dict) and entry.get("dtype") == "video"


def camera_names(info: dict) -> list[str]:
    """The cameras of an info.json, in its order."""
    return [name for name, entry in info["features"].items() if is_camera(entry)]


def with_episode(info: dict, episode_index: int, total_frames: int, total_tasks: int) -> dict:
    """`info` once episode `episode_index` is committed, the dataset then holding
    `total_frames` frames and `total_tasks` tasks."""
    counted = dict(info)
    counted["total_episodes"] = episode_index + 1
    counted["total_frames"] = total_frames
    counted["total_tasks"] = total_tasks
    counted["splits"] = {"train": f"0:{episode_index + 1}"}
    return counted


def info_text(info: dict) -> str:
    """meta/info.json's text, the one way it is written."""
    return json.dumps(info, indent=4) + "\n"


def stage_info(root: Path, info: dict) -> Path:
    """`info` written and synced under info.json's staged name (returned), for a commit to
    rename into place."""
    text = info_text(info).encode()
    return write_unpublished(root / layout.INFO_PATH, lambda f: f.write(text))


def write_info(root: Path, info: dict, linked: set[Path] | None = None) -> None:
    """meta/info.json holding `info`, durable before return (a new or adopted dataset)."""
    path = root / layout.INFO_PATH
    publish(stage_info(root, info), path)
    sync_folders([path], root, linked)
