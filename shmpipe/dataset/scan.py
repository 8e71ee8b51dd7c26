"""Every episode of a LeRobot v3.0 dataset, in order, with its data rows and image histograms:
the one streaming pass behind exact stats (`shmpipe stats`) and merging (`shmpipe merge`).

Works on any v3.0 layout (one episode per file or many). meta/episodes is read one file at a
time and data files one at a time (a few read ahead); each camera's histograms come from
shmpipe's saved per-episode histograms where the episode has them, else from its decoded video
(one decoder per camera, each file decoded once front to back). Memory: one meta/episodes file,
a few data files, one decoder per camera, whatever the dataset's size.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from shmpipe.dataset import capture_times, layout
from shmpipe.dataset.feature_types import integer_columns
from shmpipe.dataset.reader import EPISODE_COLUMNS, episodes_files, read_ahead
from shmpipe.dataset.untrusted import DamagedDatasetError, read_parquet
from shmpipe.dataset.video_histograms import DecodedHistograms, video_columns
from shmpipe.errors import ConfigError
from shmpipe.stats.images import histogram_shape

CAMERA_DTYPES = ("video",)
NOT_STORED_IN_DATA = ("video", "image")
LOCATION_COLUMNS = (*EPISODE_COLUMNS, "tasks")


@dataclass(frozen=True)
class Features:
    """What a dataset's info.json says its frames hold, as the stats see them."""

    order: list[str]  # features with stats, in info.json's order
    cameras: dict[str, tuple[int, ...]]  # video feature -> (height, width, channels)
    numeric: dict[str, int]  # data column with stats -> values per row
    columns: list[str]  # every data column kept (numeric ones and others, capture times not)
    integers: frozenset[str] = frozenset()  # numeric columns of integers (min/max kept so)

    @classmethod
    def of(cls, info: dict, name: str = "") -> Features:
        """ConfigError naming the dataset (`name`) and feature for a kind of feature that
        cannot be scanned (images stored in parquet, strings)."""
        skip = set(capture_times.columns_of(info))
        order, cameras, numeric, columns = [], {}, {}, []
        for feature, entry in info["features"].items():
            if feature in skip:
                continue
            dtype, shape = entry.get("dtype"), tuple(int(n) for n in entry.get("shape", ()))
            if dtype in CAMERA_DTYPES:
                cameras[feature] = shape
            elif dtype in NOT_STORED_IN_DATA or dtype == "string":
                raise ConfigError(f"{name}: feature {feature!r} has dtype {dtype!r}; only video "
                                  "and numeric features are supported")  # fmt: skip
            else:
                numeric[feature] = int(np.prod(shape)) if shape else 1
                columns.append(feature)
            order.append(feature)
        integers = integer_columns({n: info["features"][n] for n in numeric})
        return cls(order, cameras, numeric, columns, integers)

    def histogram_shapes(self) -> dict[str, tuple[int, int]]:
        return {camera: histogram_shape(shape) for camera, shape in self.cameras.items()}


@dataclass
class Episode:
    """One episode as the dataset stores it."""

    meta: dict  # its meta/episodes row: LOCATION_COLUMNS and each camera's video columns
    rows: pa.Table  # its data rows (Features.columns)
    histograms: dict[str, np.ndarray]  # camera -> histogram of its downsampled frames


def scan(root: Path, info: dict, features: Features) -> Iterator[Episode]:
    """The dataset's episodes 0..total_episodes-1 in order. DamagedDatasetError or ConfigError
    naming the file if one is missing or does not hold what meta/episodes says."""
    shapes = features.histogram_shapes()
    metas = list(_meta_rows(root, info, list(features.cameras)))
    data = [_data_path(root, info, m) for m in metas]
    runs = [p for i, p in enumerate(data) if i == 0 or data[i - 1] != p]
    tables = read_ahead(runs, lambda p: read_parquet(p, _rel(root, p), features.columns))
    table = index = None
    current = None
    with DecodedHistograms(root, {c: shapes[c] for c in shapes}) as decoded:
        for meta, path in zip(metas, data, strict=True):
            if path != current:
                current, future = next(tables)
                table = future.result()
                index = table.column("index").to_numpy()
            rows = _episode_rows(table, index, meta, _rel(root, path))
            yield Episode(meta, rows, _histograms(root, meta, shapes, decoded))


def _meta_rows(root: Path, info: dict, cameras: list[str]) -> Iterator[dict]:
    """meta/episodes rows (location columns only) in episode order, one file read at a time."""
    wanted = [*LOCATION_COLUMNS, *video_columns(cameras)]
    expected = 0
    for path in episodes_files(root):
        table = read_parquet(path, _rel(root, path), wanted).sort_by("episode_index")
        for row in table.to_pylist():
            if row["episode_index"] != expected:
                raise ConfigError(f"{root}: meta/episodes lists episode {row['episode_index']} "
                                  f"where episode {expected} was expected")  # fmt: skip
            expected += 1
            yield row
    if expected != info["total_episodes"]:
        raise ConfigError(f"{root}: meta/episodes lists {expected} episodes, meta/info.json "
                          f"counts {info['total_episodes']}")  # fmt: skip


def _data_path(root: Path, info: dict, meta: dict) -> Path:
    return root / info["data_path"].format(
        chunk_index=meta["data/chunk_index"], file_index=meta["data/file_index"]
    )


def _episode_rows(table: pa.Table, index: np.ndarray, meta: dict, name: str) -> pa.Table:
    """The rows with index in [dataset_from_index, dataset_to_index); a slice when the file's
    rows are in index order (as every writer writes them), else a filter."""
    start, end = meta["dataset_from_index"], meta["dataset_to_index"]
    if len(index) < 2 or bool(np.all(index[1:] >= index[:-1])):
        a, b = np.searchsorted(index, [start, end])
        rows = table.slice(int(a), int(b - a))
    else:
        rows = table.filter(pa.array((index >= start) & (index < end)))
    if rows.num_rows != meta["length"] or rows.num_rows != end - start:
        raise DamagedDatasetError(
            f"{name}: {rows.num_rows} rows of episode {meta['episode_index']} (index "
            f"[{start}, {end})), meta/episodes says {meta['length']}"
        )
    return rows


def _histograms(root: Path, meta: dict, shapes: dict, decoded: DecodedHistograms) -> dict:
    """The episode's saved histograms (shmpipe's), else counted from its decoded frames."""
    if not shapes:
        return {}
    path = layout.histograms_path(root, meta["episode_index"])
    if not path.is_file():
        return decoded.of(meta)
    try:
        with np.load(path) as saved:
            found = {camera: np.asarray(saved[camera], np.int64) for camera in shapes}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise DamagedDatasetError(f"{_rel(root, path)}: unreadable: {error}") from None
    wrong = [c for c, h in found.items() if h.shape != shapes[c]]
    if wrong:
        camera = wrong[0]
        raise DamagedDatasetError(f"{_rel(root, path)}: histogram of {camera!r} has shape "
                                  f"{found[camera].shape}, expected {shapes[camera]}")  # fmt: skip
    return found


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
