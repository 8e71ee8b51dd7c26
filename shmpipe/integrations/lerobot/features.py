"""LeRobot's conventions, read for shmpipe.integrations.lerobot.recorder: its `features` dict (what
`hw_to_dataset_features` produces) becomes Pipeline cameras and typed feature vectors (its encoder
settings: shmpipe.integrations.lerobot.encoders), a frame's timestamp is checked, and
RecorderMeta answers what LeRobot's LeRobotDatasetMetadata answers, from the meta/info.json that
shmpipe writes.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shmpipe.dataset import layout
from shmpipe.dataset.feature_types import DTYPES, FeatureSpec
from shmpipe.dataset.info import read_info
from shmpipe.dataset.rows import INDEX_COLUMNS
from shmpipe.errors import ConfigError, FrameError

SUPPORTED = (
    "'video' or 'image' cameras of shape (height, width, 3) or (3, height, width), "
    f"stored as video, and vectors of shape (n,) of dtype {' / '.join(DTYPES)}"
)
HWC_NAMES = ["height", "width", "channels"]
CHW_NAMES = ["channels", "height", "width"]


@dataclass(frozen=True)
class RecordingLayout:
    """What Pipeline needs from a LeRobot features dict: cameras (name -> (h, w, 3)), numeric
    features (name -> ((n,), dtype)) and the per-dimension names of those that have them."""

    cameras: dict[str, tuple[int, int, int]]
    features: dict[str, FeatureSpec]
    feature_names: dict[str, list[str]]


def parse_features(features: Mapping[str, Mapping]) -> RecordingLayout:
    """Read LeRobot's features dict; LeRobot's index columns (timestamp, frame_index,
    episode_index, index, task_index) are skipped, shmpipe writes them itself. ConfigError (a
    ValueError) naming the feature for anything shmpipe cannot record."""
    if not isinstance(features, Mapping):
        raise ConfigError(f"features: expected LeRobot's dict name -> {{dtype, shape, names}}, "
                          f"got {type(features).__name__}")  # fmt: skip
    cameras, vectors, names = {}, {}, {}
    for name, spec in features.items():
        if name in INDEX_COLUMNS:
            continue
        if not isinstance(spec, Mapping) or "dtype" not in spec or "shape" not in spec:
            raise ConfigError(f"feature {name!r}: expected a dict with 'dtype' and 'shape', "
                              f"got {spec!r}")  # fmt: skip
        dtype = spec["dtype"]
        if dtype in ("video", "image"):
            cameras[name] = _camera_shape(name, spec)
        elif dtype in DTYPES:
            vectors[name] = FeatureSpec(_vector_shape(name, spec["shape"]), dtype)
            if spec.get("names") is not None:
                names[name] = _dimension_names(name, spec["names"], vectors[name].shape[0])
        else:
            raise ConfigError(f"feature {name!r}: dtype {dtype!r} is not supported; "
                              f"LeRobotRecorder records {SUPPORTED}")  # fmt: skip
    if not cameras:
        raise ConfigError(f"features: no camera; LeRobotRecorder needs at least one 'video' or "
                          f"'image' feature, got {list(features)}")  # fmt: skip
    return RecordingLayout(cameras, vectors, names)


def _camera_shape(name: str, spec: Mapping) -> tuple[int, int, int]:
    """(h, w, c) of a camera, read by its "names" as LeRobot does: channel-first when they
    are channels, height, width; channel-last when they are height, width, channels or absent."""
    shape, dim_names = tuple(spec["shape"]), spec.get("names")
    info = spec.get("info") or {}
    if len(shape) != 3 or not all(isinstance(d, int) and d >= 1 for d in shape):
        raise ConfigError(f"camera {name!r}: expected a shape of 3 sizes, got {shape!r}")
    if dim_names is not None and list(dim_names) not in (HWC_NAMES, CHW_NAMES):
        raise ConfigError(f"camera {name!r}: names {dim_names!r}: expected {HWC_NAMES} or "
                          f"{CHW_NAMES}")  # fmt: skip
    channel_first = dim_names is not None and list(dim_names) == CHW_NAMES
    h, w, c = (shape[1], shape[2], shape[0]) if channel_first else shape
    if c == 1:
        return (h, w, 1)  # a depth map: uint16 millimetres, stored as LeRobot does (depth.py)
    if info.get("is_depth_map") or info.get("video.is_depth_map"):
        raise ConfigError(f"camera {name!r}: a depth map has 1 channel, got shape {shape!r}")
    if c != 3:
        raise ConfigError(f"camera {name!r}: {c} channels in shape {shape!r}; expected RGB, 3")
    return (h, w, c)


def _vector_shape(name: str, shape: object) -> tuple[int]:
    dims = tuple(shape) if isinstance(shape, tuple | list) else None
    if dims is None or len(dims) != 1 or not isinstance(dims[0], int) or dims[0] < 1:
        raise ConfigError(f"feature {name!r}: shape {shape!r} is not supported; "
                          f"LeRobotRecorder records {SUPPORTED}")  # fmt: skip
    return (dims[0],)


def _dimension_names(name: str, names: object, size: int) -> list[str]:
    if isinstance(names, list | tuple) and all(isinstance(n, str) for n in names):
        if len(names) == size:
            return list(names)
    raise ConfigError(f"feature {name!r}: names {names!r}: expected None or a list of {size} "
                      f"strings, one per dimension")  # fmt: skip


def check_timestamp(timestamp: object, frame_index: int, fps: int, tolerance_s: float) -> None:
    """A caller's timestamp must be frame_index / fps (what the dataset stores) within
    tolerance_s; FrameError otherwise, as a different time would be lost."""
    try:
        got = float(np.asarray(timestamp, dtype=np.float64).item())
    except (TypeError, ValueError):
        raise FrameError(f"timestamp: expected seconds, got {timestamp!r}") from None
    expected = frame_index / fps
    if not abs(got - expected) <= tolerance_s:
        raise FrameError(
            f"timestamp {got}: frame {frame_index} of the episode is at {expected:.6f} s "
            f"(frame_index / fps); the dataset stores that time, so a different one would be "
            f"lost (tolerance_s={tolerance_s})"
        )


def default_root(repo_id: str) -> Path:
    """LeRobot's default: $HF_LEROBOT_HOME/repo_id, HF_LEROBOT_HOME defaulting to
    $HF_HOME/lerobot and HF_HOME to $XDG_CACHE_HOME/huggingface (~/.cache/huggingface)."""
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    hf_home = os.path.expanduser(os.getenv("HF_HOME", os.path.join(cache, "huggingface")))
    home = Path(os.getenv("HF_LEROBOT_HOME", os.path.join(hf_home, "lerobot"))).expanduser()
    return home / repo_id


class InfoDict(dict):
    """meta/info.json as a dict (LeRobot 0.4: `info["fps"]`) that also answers attribute access
    (newer LeRobot's DatasetInfo: `info.fps`). Feature shapes are tuples, as LeRobot loads them."""

    def __getattr__(self, key: str) -> object:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _info_field(key: str, doc: str) -> property:
    return property(lambda self: self.info[key], doc=doc)


class RecorderMeta:
    """What LeRobotDatasetMetadata answers while recording, read from `root`'s info.json
    (re-read by `refresh()`), plus the episodes `committing` in the background (their
    FinishHandles): `info`'s total_episodes and total_frames count them from save_episode
    on, as LeRobot's own meta does, and info.json is re-read once they are committed."""

    fps = _info_field("fps", "Frames per second of the dataset.")
    features = _info_field("features", "Every feature, LeRobot's index columns included.")
    robot_type = _info_field("robot_type", "The robot type given at creation, or None.")
    total_episodes = _info_field("total_episodes", "Episodes saved.")
    total_frames = _info_field("total_frames", "Frames of the saved episodes.")
    total_tasks = _info_field("total_tasks", "Distinct task texts of the saved episodes.")
    chunks_size = _info_field("chunks_size", "Files per chunk folder.")
    data_files_size_in_mb = _info_field("data_files_size_in_mb", "As LeRobot records it.")
    video_files_size_in_mb = _info_field("video_files_size_in_mb", "As LeRobot records it.")
    data_path = _info_field("data_path", "Template of the data files' paths.")
    video_path = _info_field("video_path", "Template of the video files' paths.")

    def __init__(self, repo_id: str, root: Path) -> None:
        self.repo_id, self.root = repo_id, root
        self.committing: list = []  # FinishHandles of saved episodes not committed yet
        self.failed: list[BaseException] = []  # what failed their commits, not yet raised
        self._lock = threading.Lock()  # a push (sentry's thread) settles beside the loop
        self.refresh()

    def committing_too(self, handle) -> None:
        with self._lock:
            self.committing.append(handle)

    def settle(self, wait: bool = False) -> None:
        """Forget the handles of commits that ended (with `wait`, once those saved so far
        have), re-reading info.json; the errors of those that failed go to `failed`."""
        if wait:
            for handle in list(self.committing):
                handle.exception()  # waits
        with self._lock:
            ended = [h for h in self.committing if h.done()]
            if not ended:
                return
            self.committing = [h for h in self.committing if h not in ended]
            self.failed += [e for h in ended if (e := h.exception()) is not None]
            self.refresh()

    @property
    def info(self) -> InfoDict:
        """info.json, counting the episodes still committing."""
        self.settle()
        committing = list(self.committing)
        if not committing:
            return self._on_disk
        info = InfoDict(self._on_disk)
        info["total_episodes"] += len(committing)
        info["total_frames"] += sum(h.num_frames for h in committing)
        info["total_tasks"] = max(info["total_tasks"], *(h.total_tasks for h in committing))
        return info

    def refresh(self) -> None:
        info = read_info(self.root / layout.INFO_PATH)
        for feature in info.get("features", {}).values():
            feature["shape"] = tuple(feature["shape"])
        self._on_disk = InfoDict(info)

    @property
    def stats(self) -> dict[str, dict[str, np.ndarray]] | None:
        """meta/stats.json as numpy arrays, as LeRobot loads it (0.4.x's record() with a
        --policy reads it); None while no episode is saved."""
        path = self.root / layout.STATS_PATH
        if not path.is_file():
            return None
        stats = json.loads(path.read_text())
        return {key: {name: np.asarray(value) for name, value in entry.items()}
                for key, entry in stats.items()}  # fmt: skip

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] in ("video", "image")]

    @property
    def video_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] == "video"]

    @property
    def image_keys(self) -> list[str]:
        return []  # every camera is stored as video

    @property
    def depth_keys(self) -> list[str]:
        return [k for k, f in self.features.items()
                if f["dtype"] == "video" and (f.get("info") or {}).get("is_depth_map")]  # fmt: skip

    @property
    def names(self) -> dict[str, list | None]:
        return {key: f["names"] for key, f in self.features.items()}

    @property
    def shapes(self) -> dict[str, tuple]:
        return {key: tuple(f["shape"]) for key, f in self.features.items()}

    def __repr__(self) -> str:
        return (f"RecorderMeta(repo_id={self.repo_id!r}, total_episodes={self.total_episodes}, "
                f"total_frames={self.total_frames}, features={list(self.features)})")  # fmt: skip
