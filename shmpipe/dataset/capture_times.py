"""Capture-time columns: when each camera really took each frame, beside LeRobot's i/fps stamps.

A dataset recorded with capture times has one float64 column per camera, `capture_time.<camera>`
(seconds on the caller's clock; `shmpipe record` gives time.time()), declared in info.json's
features as a scalar float64 like LeRobot's own scalars and listed in the "shmpipe" block, so
that they are not taken for recorded features. LeRobot loads them as extra float64 items and its
policies skip them (their names start neither with "observation" nor with "action").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

PREFIX = "capture_time."
INFO_KEY = "capture_times"  # in info.json's "shmpipe" block: the cameras that have a column


def column(camera: str) -> str:
    """The data column holding `camera`'s capture times."""
    return PREFIX + camera


def feature_entry() -> dict:
    """The column's entry in info.json's features (LeRobot's form of a scalar)."""
    return {"dtype": "float64", "shape": [1], "names": None}


def cameras_of(info: dict) -> list[str]:
    """The cameras whose capture times the dataset of `info` stores (none: [])."""
    block = info.get("shmpipe")
    return list(block.get(INFO_KEY, [])) if isinstance(block, dict) else []


def columns_of(info: dict) -> list[str]:
    return [column(camera) for camera in cameras_of(info)]


def read_episode(data_file: str | Path, cameras: Sequence[str], episode: int | None = None
                 ) -> dict[str, np.ndarray]:  # fmt: skip
    """camera -> the capture times of one episode's rows (all rows if `episode` is None)."""
    names = [column(c) for c in cameras]
    table = pq.read_table(data_file, columns=[*names, "episode_index"])
    if episode is not None:
        keep = table.column("episode_index").to_numpy() == episode
        table = table.filter(keep)
    return {
        c: table.column(n).to_numpy().astype(np.float64)
        for c, n in zip(cameras, names, strict=True)
    }
