"""Where files go under a recording's root, following LeRobot v3.0's path templates: every path,
glob and suffix of a dataset is built here (a video's segment names in shmpipe.video.segments).

Every episode has its own numbered file of each kind: file number = episode index, split into
(chunk, file) folders of CHUNKS_SIZE files, so saving one episode never touches another's files.
A file is first written under its staged name (`staged`), which no reader's glob matches
(LeRobot globs data/*/*.parquet, meta/episodes/*/*.parquet, videos/*/*/*.mp4), and renamed into
place when its episode is published.
"""

from __future__ import annotations

import re
from pathlib import Path

from shmpipe.video.segments import is_encoder_temporary

CHUNKS_SIZE = 1000  # files per chunk folder, as LeRobot
META_DIR = "meta"
DATA_DIR = "data"
VIDEOS_DIR = "videos"
EPISODES_DIR = "meta/episodes"
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
SPILL_GLOB = "*.raw"
PACK_JOURNAL = SHMPIPE_DIR + "/pack.json"  # shmpipe.dataset.pack_journal
MERGE_DIR = SHMPIPE_DIR + "/merge"  # a merge's marks in its own folder (shmpipe.tools.merge)
# Folders of numbered episode files (chunk-XXX/file-YYY.*), besides one per camera in videos/.
EPISODE_FOLDERS = (DATA_DIR, EPISODES_DIR, HISTOGRAMS_DIR)
PACKED_FOLDERS = (DATA_DIR, VIDEOS_DIR, EPISODES_DIR)  # what pack rewrites
CHUNK_GLOB = "chunk-*"
DATA_GLOB = DATA_DIR + "/chunk-*/file-*.parquet"
EPISODES_GLOB = EPISODES_DIR + "/chunk-*/file-*.parquet"
# What LeRobot's loader globs: every file matching is read as part of the dataset.
READERS_DATA_GLOB = DATA_DIR + "/*/*.parquet"
READERS_VIDEO_GLOB = VIDEOS_DIR + "/{video_key}/*/*.mp4"
STAGED = ".partial"  # a whole file, synced, waiting to be renamed into place
PACKING = ".packing"  # pack's new files until the swap renames them into place

_NUMBERED = re.compile(r"chunk-(\d+)/file-(\d+)\.[^/]*$")
_CHUNK = re.compile(r"chunk-(\d+)$")


def staged(path: Path) -> Path:
    """The name `path` is written under before it is renamed into place."""
    return path.with_name(path.name + STAGED)


def is_temporary(name: str) -> bool:
    """A file name that is never part of a finished episode: staged, an encoder's segment or
    join, or pack's."""
    return name.endswith((STAGED, PACKING)) or is_encoder_temporary(name)


def video_glob(camera: str) -> str:
    """The glob of a camera's published videos, relative to the root."""
    return f"{VIDEOS_DIR}/{camera}/chunk-*/file-*.mp4"


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


def staged_video_path(root: Path, camera: str, number: int) -> Path:
    """Where an encoder leaves a video for its episode's commit to publish."""
    return staged(video_path(root, camera, number))


def histograms_path(root: Path, number: int) -> Path:
    return _numbered(root, HISTOGRAMS_PATH, number)
