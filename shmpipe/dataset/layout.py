"""Where files go under a recording's root, following LeRobot v3.0's path templates.

Every episode has its own numbered file of each kind: file number = episode index, split into
(chunk, file) folders of CHUNKS_SIZE files, so saving one episode never touches another's files.
"""

from __future__ import annotations

import re
from pathlib import Path

CHUNKS_SIZE = 1000  # files per chunk folder, as LeRobot
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
# Our own files, in a folder LeRobot never reads.
SHMPIPE_DIR = "meta/shmpipe"
HISTOGRAMS_DIR = SHMPIPE_DIR + "/image_histograms"
HISTOGRAMS_PATH = HISTOGRAMS_DIR + "/chunk-{chunk_index:03d}/file-{file_index:03d}.npz"
LOCK_PATH = SHMPIPE_DIR + "/writer.lock"
STATE_PATH = SHMPIPE_DIR + "/state.npz"  # what resuming needs (shmpipe.dataset.state)
SPILL_DIR = SHMPIPE_DIR + "/spill"  # raw frames of a backlog past its memory allowance

_NUMBERED = re.compile(r"chunk-(\d+)/file-(\d+)\.[^/]*$")
_CHUNK = re.compile(r"chunk-(\d+)$")


def chunk_and_file(number: int) -> tuple[int, int]:
    """The (chunk, file) indices of the `number`-th file of its kind."""
    return divmod(number, CHUNKS_SIZE)


def file_number(path: Path) -> int | None:
    """Inverse of chunk_and_file for a path ending in chunk-XXX/file-YYY.<anything>, temporaries
    included (file-YYY.mp4.partial.000000); None otherwise."""
    match = _NUMBERED.search(path.as_posix())
    if match is None:
        return None
    return int(match[1]) * CHUNKS_SIZE + int(match[2])


def chunk_number(folder: Path) -> int | None:
    """XXX of a folder named chunk-XXX; None for any other name."""
    match = _CHUNK.match(folder.name)
    return None if match is None else int(match[1])


def _numbered(root: Path, template: str, number: int, **keys: str) -> Path:
    chunk, file = chunk_and_file(number)
    return root / template.format(chunk_index=chunk, file_index=file, **keys)


def data_path(root: Path, number: int) -> Path:
    return _numbered(root, DATA_PATH, number)


def video_path(root: Path, camera: str, number: int) -> Path:
    return _numbered(root, VIDEO_PATH, number, video_key=camera)


def episodes_path(root: Path, number: int) -> Path:
    return _numbered(root, EPISODES_PATH, number)


def histograms_path(root: Path, number: int) -> Path:
    return _numbered(root, HISTOGRAMS_PATH, number)
