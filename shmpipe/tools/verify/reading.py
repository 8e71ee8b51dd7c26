"""How verify reads a dataset it does not trust: info.json and meta/episodes are checked before
anything they name is used, and a dataset that cannot be judged as it stands (a pack was
interrupted, a recorder is mid-commit) is named as such instead of listing false problems.
"""

from __future__ import annotations

import math
from pathlib import Path

from shmpipe.dataset import layout
from shmpipe.dataset.files import is_locked
from shmpipe.dataset.pack_journal import PACK_JOURNAL, interrupted
from shmpipe.dataset.reader import EPISODE_COLUMNS, video_prefix
from shmpipe.dataset.untrusted import DamagedDatasetError, info_problems, is_index, read_json
from shmpipe.errors import ConfigError

INFO = layout.INFO_PATH
REQUIRED = ("fps", "features", "data_path", "video_path")


class NotADatasetError(ConfigError):
    """The folder holds no readable LeRobot v3.0 meta/info.json."""


def read_info(root: Path) -> dict:
    """info.json as a dict of a v3.0 dataset; NotADatasetError if there is none."""
    if not root.is_dir():
        raise NotADatasetError(f"{root} is not a folder")
    path = root / INFO
    if not path.exists():
        raise NotADatasetError(f"{root} is not a LeRobot dataset: no {INFO}")
    try:
        info = read_json(path, str(path))
    except DamagedDatasetError as error:
        raise NotADatasetError(str(error)) from None
    version = info.get("codebase_version") if isinstance(info, dict) else None
    if version != "v3.0":
        raise NotADatasetError(
            f"{root} is not a LeRobot v3.0 dataset (codebase_version {version!r})"
        )
    missing = [k for k in REQUIRED if k not in info]
    if missing:
        raise NotADatasetError(f"{path} lacks {', '.join(missing)}")
    return info


def blocking_problems(root: Path, info: dict) -> list[tuple[str, str]]:
    """(file, problem) that keep the dataset from being checked at all: an interrupted pack,
    an info.json whose fields cannot be used. [] if it can be checked."""
    state = interrupted(root)
    if state is not None:
        finish = f"run `shmpipe pack {root}` again (or open it for recording) to finish it"
        doing = "writing its new files" if state == "writing" else "swapping files"
        return [(PACK_JOURNAL, f"a pack was interrupted while {doing}: {finish}")]
    return [(INFO, problem) for problem in info_problems(info)]


def episode_row_problems(row: dict, cameras: list[str]) -> list[str]:
    """What in one meta/episodes row cannot be used to find its rows and frames: indices that
    are not whole numbers >= 0, a length < 1, video times that are not numbers."""
    out = []
    for column in EPISODE_COLUMNS:
        value = row.get(column)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            out.append(f"{column} is {value!r}, expected a whole number >= 0")
    indices = ["data/chunk_index", "data/file_index"]
    for camera in cameras:
        indices += [video_prefix(camera) + "chunk_index", video_prefix(camera) + "file_index"]
        for key in ("from_timestamp", "to_timestamp"):
            value = row.get(video_prefix(camera) + key)
            if value is not None and not (isinstance(value, float) and math.isfinite(value)):
                out.append(f"{video_prefix(camera) + key} is {value!r}, expected seconds")
    for column in indices:
        if column in row and not is_index(row[column]):
            out.append(f"{column} is {row[column]!r}, expected a file number")
    return out


def live_problem(root: Path, tries: int, first: str) -> str | None:
    """The one problem to report for a dataset a recorder holds (None if none does): what
    verify saw may be a commit in progress, not damage."""
    if not is_locked(root):
        return None
    return (
        f"the dataset is being recorded (a recorder holds {layout.LOCK_PATH}) and was "
        f"mid-commit in each of {tries} checks; verify it once the recorder is closed "
        f"(first difference seen: {first})"
    )
