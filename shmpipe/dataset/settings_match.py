"""Does the dataset at a root hold what a recorder asks for? Its info.json against the wanted
one: fps, cameras, features, capture-time columns, video encoder settings and (if given)
robot_type and the features' per-dimension names. A dataset recorded otherwise is refused
before anything is changed.
"""

from __future__ import annotations

from pathlib import Path

from shmpipe.dataset import capture_times, layout
from shmpipe.dataset.files import require_empty
from shmpipe.dataset.info import CODEBASE_VERSION, is_camera, read_info
from shmpipe.dataset.rows import INDEX_COLUMNS
from shmpipe.errors import ConfigError

DEPTH_KEY, LEGACY_DEPTH_KEY = "is_depth_map", "video.is_depth_map"  # see camera_info
_FOLLOWS_FROM_SHAPE_AND_FPS = ("video.height", "video.width", "video.channels", "video.fps")


def differences(
    wanted: dict, found: dict, check_robot_type: bool, check_feature_names: bool
) -> list[str]:
    """Each setting in which `found` (an existing info.json) differs from `wanted`. robot_type
    and the features' per-dimension names are compared only if the caller gave them."""
    out: list[str] = []

    def compare(what: str, expected: object, got: object) -> None:
        if expected != got:
            out.append(f"{what}: expected {expected!r}, found {got!r}")

    block = found.get("shmpipe", {})  # absent: written by LeRobot, adopted on opening
    if found.get("codebase_version") != CODEBASE_VERSION or not isinstance(block, dict):
        version = found.get("codebase_version")
        return [f"not a dataset written by shmpipe ({CODEBASE_VERSION}): found {version!r}"]
    compare("fps", wanted["fps"], found.get("fps"))
    compare("capture-time columns of cameras", capture_times.cameras_of(wanted),
            capture_times.cameras_of(found))  # fmt: skip
    if check_robot_type:
        compare("robot_type", wanted["robot_type"], found.get("robot_type"))
    want_f, found_f = wanted["features"], found.get("features", {})
    for kind, cameras in (("cameras", True), ("features", False)):
        compare(kind, _names(want_f, cameras), _names(found_f, cameras))
    for name in [n for n in want_f if n in found_f]:
        want, got = want_f[name], found_f[name]
        kind = "camera" if is_camera(want) else "feature"
        keys = ["dtype", "shape"] + (["names"] if kind == "camera" or check_feature_names else [])
        for key in keys:
            compare(f"{kind} {name!r} {key}", want[key], got.get(key))
        want_info, got_info = camera_info(want), camera_info(got)
        for key, value in want_info.items():
            if key not in _FOLLOWS_FROM_SHAPE_AND_FPS:
                compare(f"{kind} {name!r} {key}", value, got_info.get(key))
    want_video = wanted["shmpipe"]["video_encoder"]
    found_video = _object(block.get("video_encoder", want_video))  # LeRobot's: its info blocks
    for key in dict.fromkeys([*want_video, *found_video]):
        compare(f"video encoder {key}", want_video.get(key), found_video.get(key))
    return out


def camera_info(entry: dict) -> dict:
    """A feature's `info` by meaning: LeRobot 0.4 (and shmpipe) write `video.is_depth_map`,
    LeRobot 0.5 and later `is_depth_map` (and migrate the old key when they rewrite it); both
    read as `is_depth_map`."""
    info = dict(_object(entry.get("info")))
    if LEGACY_DEPTH_KEY in info:
        legacy = info.pop(LEGACY_DEPTH_KEY)
        info.setdefault(DEPTH_KEY, legacy)
    return info


def _object(value: object) -> dict:
    """A JSON object read from a file, or {} if it holds something else."""
    return value if isinstance(value, dict) else {}


def _names(entries: dict[str, dict], cameras: bool) -> list[str]:
    """Camera names, or names of the recorded features (not LeRobot's index columns)."""
    return sorted(
        n for n, f in entries.items() if is_camera(f) == cameras and n not in INDEX_COLUMNS
    )


def matching_info(
    root: Path, wanted: dict, check_robot_type: bool, check_feature_names: bool
) -> dict | None:
    """The info.json of the dataset at `root` if its settings are `wanted`'s; None if `root`
    is absent or empty. Anything else raises ConfigError."""
    info_path = root / layout.INFO_PATH
    if not info_path.exists():
        require_empty(root)
        return None
    found = read_info(info_path)
    problems = differences(wanted, found, check_robot_type, check_feature_names)
    if problems:
        raise ConfigError(
            f"{root}: the dataset there was recorded with other settings:\n  "
            + "\n  ".join(problems)
        )
    return found
