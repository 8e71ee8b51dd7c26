"""Datasets on disk that are broken, half-written or made to hurt the tools that read them.

`record_small` records a whole two-episode dataset; each entry of DAMAGE turns a copy of it into
one hostile dataset, as a power cut, a careless edit or a malicious download would leave it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe import Pipeline
from tests.helpers.frames import textured_frame

CAMERA = "observation.images.front"
CAMERAS = {CAMERA: (32, 48, 3)}
FEATURES = {"observation.state": (2,)}
FPS = 30
EPISODES, FRAMES = 2, 10
INFO, STATS, TASKS = "meta/info.json", "meta/stats.json", "meta/tasks.parquet"
VIDEO0 = f"videos/{CAMERA}/chunk-000/file-000.mp4"
DATA0 = "data/chunk-000/file-000.parquet"
EPISODES0 = "meta/episodes/chunk-000/file-000.parquet"


def record_small(root: Path, episodes: int = EPISODES, first: int = 0) -> Path:
    """Record (or add to) a tiny dataset: one 32x48 camera, a 2-value state, 10 frames each."""
    with Pipeline(root, fps=FPS, cameras=CAMERAS, features=FEATURES, backend="thread") as pipe:
        for e in range(first, first + episodes):
            for i in range(FRAMES):
                state = np.array([e, i], np.float32)
                pipe.add_frame({CAMERA: textured_frame(i, 32, 48, e), "observation.state": state},
                               task=f"task {e}")  # fmt: skip
            pipe.finish_episode()
    return root


def edit_info(root: Path, **changes: object) -> None:
    path = root / INFO
    info = json.loads(path.read_text())
    info.update(changes)
    path.write_text(json.dumps(info))


def edit_episodes(root: Path, column: str, values: pa.Array) -> None:
    """Replace one column of meta/episodes file 0 (episode 0's row)."""
    path = root / EPISODES0
    table = pq.read_table(path)
    table = table.set_column(table.schema.get_field_index(column), column, values)
    pq.write_table(table, path)


def make_fifo(root: Path, relative: str) -> None:
    """Put a FIFO with no writer where the dataset names a file: opening it blocks forever."""
    (root / relative).unlink()
    os.mkfifo(root / relative)


def deep_json(depth: int = 200_000) -> str:
    return "[" * depth + "]" * depth


def power_cut(root: Path) -> None:
    """What ext4 held 8 s after the last commit without fsync: every file that was created
    (not renamed over an existing one) is there with 0 bytes; info.json and stats.json survive."""
    for path in root.rglob("*"):
        if path.is_file() and path.name not in ("info.json", "stats.json", "writer.lock"):
            path.write_bytes(b"")


def device_as_video(root: Path) -> None:
    (root / VIDEO0).unlink()
    (root / VIDEO0).symlink_to("/dev/zero")


# name -> (damage, exit code of `shmpipe verify`, words its message must hold)
DAMAGE: dict[str, tuple[Callable[[Path], None], int, str]] = {
    "fps as a string": (lambda r: edit_info(r, fps="thirty"), 2, "fps"),
    "features as a list": (lambda r: edit_info(r, features=["a", "b"]), 2, "features"),
    "total_episodes as a string": (
        lambda r: edit_info(r, total_episodes="2"),
        2,
        "total_episodes",
    ),  # fmt: skip
    "oversized video_path": (
        lambda r: edit_info(r, video_path="videos/" + "x" * 5000 + "/{video_key}/f.mp4"),
        2,
        "video_path",
    ),
    "a format width of a billion": (
        lambda r: edit_info(r, data_path="data/{chunk_index:1000000000d}.parquet"),
        2,
        "data_path",
    ),
    "a path out of the root": (
        lambda r: edit_info(r, data_path="../../{chunk_index}/{file_index}.parquet"),
        2,
        "data_path",
    ),  # fmt: skip
    "deeply nested info.json": (lambda r: (r / INFO).write_text(deep_json()), 1, "info.json"),
    "deeply nested stats.json": (lambda r: (r / STATS).write_text(deep_json()), 2, "stats.json"),
    "huge stats.json": (lambda r: os.truncate(r / STATS, 1 << 30), 2, "stats.json"),
    "length as strings": (lambda r: edit_episodes(r, "length", pa.array(["10"])), 2, "length"),
    "power cut: 0-byte files": (power_cut, 2, "0 bytes"),
    "FIFO as video": (lambda r: make_fifo(r, VIDEO0), 2, "FIFO"),
    "FIFO as data file": (lambda r: make_fifo(r, DATA0), 2, "FIFO"),
    "FIFO as meta/episodes": (lambda r: make_fifo(r, EPISODES0), 2, "FIFO"),
    "FIFO as tasks.parquet": (lambda r: make_fifo(r, TASKS), 2, "FIFO"),
    "FIFO as stats.json": (lambda r: make_fifo(r, STATS), 2, "FIFO"),
    "FIFO as info.json": (lambda r: make_fifo(r, INFO), 1, "FIFO"),
    "/dev/zero as video": (device_as_video, 2, "not a regular file"),
}
