"""Exact stats of a set of frames, mergeable episode by episode: meta/stats.json's source.

Images keep their summed per-channel histograms, numeric columns every value (sorted), so the
dataset's stats are those of all its frames, not an average of episodes' stats.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from shmpipe.dataset import layout
from shmpipe.dataset.reader import data_rows
from shmpipe.dataset.untrusted import DamagedDatasetError, read_parquet, require_file
from shmpipe.errors import ConfigError
from shmpipe.stats.columns import ColumnValues, Stats
from shmpipe.stats.images import STAT_KEYS, histogram_shape, stats_from_histograms

INTEGER_COLUMNS = ("frame_index", "episode_index", "index", "task_index")


class DatasetStats:
    """Histograms per camera and ColumnValues per numeric column, keyed in info.json's order."""

    def __init__(
        self,
        order: Sequence[str],
        histograms: dict[str, np.ndarray],
        values: dict[str, ColumnValues],
    ) -> None:
        self.order = list(order)
        self.histograms = histograms
        self.values = values

    @classmethod
    def empty(
        cls, order: Sequence[str], cameras: Mapping[str, tuple], numeric: Mapping[str, int]
    ) -> DatasetStats:
        """No frames yet. cameras: name -> shape; numeric: column -> values per row (1 for the
        index columns)."""
        zeros = {name: np.zeros(histogram_shape(s), np.int64) for name, s in cameras.items()}
        values = {name: ColumnValues.empty(width) for name, width in numeric.items()}
        return cls(order, zeros, values)

    def episode_stats(
        self,
        columns: Mapping[str, np.ndarray | pa.ChunkedArray],
        histograms: Mapping[str, np.ndarray],
    ) -> DatasetStats:
        """The stats of other frames, laid out as these: their numeric columns (numpy or arrow,
        one row per frame) and each camera's histogram of downsampled pixels."""
        values = {
            name: ColumnValues.of(_rows(columns[name], old.sorted.shape[0]))
            for name, old in self.values.items()
        }
        counts = {name: np.asarray(histograms[name], np.int64) for name in self.histograms}
        return DatasetStats(self.order, counts, values)

    def merged(self, other: DatasetStats) -> DatasetStats:
        """The stats of both sets of frames."""
        histograms = {name: h + other.histograms[name] for name, h in self.histograms.items()}
        values = {name: v.merged(other.values[name]) for name, v in self.values.items()}
        return DatasetStats(self.order, histograms, values)

    def read_back(self, root: Path, episodes: int, frames: int) -> DatasetStats:
        """These stats merged with those of episodes 0..episodes-1, read back from their files
        (saved image histograms, data rows found through meta/episodes, so per-episode and
        packed files alike); `frames` is how many rows info.json counts."""
        if episodes == 0:
            return self
        hist_paths = [layout.histograms_path(root, e) for e in range(episodes)]
        data_files = data_rows(root, episodes)
        absent = [str(p.relative_to(root)) for p in [*hist_paths, *data_files] if not p.is_file()]
        if absent:
            raise ConfigError(
                f"{root}: meta/info.json counts {episodes} episodes but {len(absent)} of "
                f"their files are missing, e.g. {absent[:3]}"
            )
        histograms = dict.fromkeys(self.histograms, 0)
        for path in hist_paths:
            histograms = _add_histograms(root, path, histograms)
        names = list(self.values)
        table = pa.concat_tables(
            [_rows_in(read_parquet(p, _name(root, p), names), r) for p, r in data_files.items()]
        )
        if table.num_rows != frames:
            raise ConfigError(
                f"{root}: data files hold {table.num_rows} rows, "
                f"meta/info.json counts total_frames={frames}"
            )
        columns = {name: table.column(name) for name in names}
        return self.merged(self.episode_stats(columns, histograms))

    def stats(self) -> dict[str, Stats]:
        """LeRobot's stats of every camera and numeric column, in info.json's order."""
        out: dict[str, Stats] = {}
        for name in self.order:
            if name in self.histograms:
                out[name] = stats_from_histograms(self.histograms[name])
            else:
                out[name] = self.values[name].stats(integer=name in INTEGER_COLUMNS)
        return out


def stats_json(stats: Mapping[str, Stats]) -> str:
    """meta/stats.json's text."""
    plain = {name: {key: s[key].tolist() for key in STAT_KEYS} for name, s in stats.items()}
    return json.dumps(plain, indent=4) + "\n"


def counts_in(stats_json_text: str) -> dict[str, list[int]] | None:
    """The `count` of every feature in a stats.json's text; None if it is not one."""
    try:
        return {name: s["count"] for name, s in json.loads(stats_json_text).items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _name(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _add_histograms(root: Path, path: Path, histograms: dict) -> dict:
    """`histograms` plus those saved in the .npz file `path`; DamagedDatasetError naming the
    file if it is cut short or lacks a camera."""
    require_file(path, _name(root, path))
    try:
        with np.load(path) as saved:
            return {name: total + saved[name] for name, total in histograms.items()}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise DamagedDatasetError(f"{_name(root, path)}: unreadable: {error}") from None


def _rows_in(table: pa.Table, ranges: np.ndarray) -> pa.Table:
    """The rows of `table` whose dataset `index` lies in one of the [from, to) ranges."""
    index = table.column("index").to_numpy()
    ranges = ranges[np.argsort(ranges[:, 0])]
    at = np.searchsorted(ranges[:, 0], index, side="right") - 1
    inside = (at >= 0) & (index < ranges[np.maximum(at, 0), 1])
    return table.filter(pa.array(inside))


def _rows(column: np.ndarray | pa.ChunkedArray, width: int) -> np.ndarray:
    """(frames, width) values of a column given as numpy or arrow (plain or fixed-size lists)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            column = column.flatten()
        column = column.to_numpy()
    return np.asarray(column).reshape(-1, width)
