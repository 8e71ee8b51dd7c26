"""Stats of a set of frames, mergeable episode by episode: meta/stats.json's source.

Images keep their summed per-channel histograms (exact), numeric columns their moments and a
quantile sketch (shmpipe.stats.columns), so the dataset's stats are those of all its frames, not
an average of episodes' stats, and merging an episode costs O(that episode). The whole state
fits in meta/shmpipe/state.npz (to_arrays); `rebuilt` makes it again from the dataset's files.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from shmpipe.dataset import layout
from shmpipe.dataset.reader import read_ahead, read_episodes
from shmpipe.dataset.untrusted import DamagedDatasetError, read_parquet, require_file
from shmpipe.errors import ConfigError
from shmpipe.stats.columns import ColumnValues, Stats
from shmpipe.stats.images import STAT_KEYS, histogram_shape, stats_from_histograms

INTEGER_COLUMNS = ("frame_index", "episode_index", "index", "task_index")  # LeRobot's own
READ_AHEAD = 8  # data files read ahead while rebuilding
_ROW_KEYS = ("data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index")


class DatasetStats:
    """Histograms per camera and ColumnValues per numeric column, keyed in info.json's order;
    `integers`: the columns of integers (their min and max stay integers)."""

    def __init__(
        self,
        order: Sequence[str],
        histograms: dict[str, np.ndarray],
        values: dict[str, ColumnValues],
        integers: Collection[str] = INTEGER_COLUMNS,
    ) -> None:
        self.order = list(order)
        self.histograms = histograms
        self.values = values
        self.integers = frozenset(integers)

    @classmethod
    def empty(
        cls, order: Sequence[str], cameras: Mapping[str, tuple], numeric: Mapping[str, int],
        integers: Collection[str] = INTEGER_COLUMNS,
    ) -> DatasetStats:
        """No frames yet. cameras: name -> shape; numeric: column -> values per row (1 for the
        index columns); integers: the numeric columns that hold integers."""
        zeros = {name: np.zeros(histogram_shape(s), np.int64) for name, s in cameras.items()}
        values = {name: ColumnValues.empty(width) for name, width in numeric.items()}
        return cls(order, zeros, values, integers)

    def episode_stats(
        self,
        columns: Mapping[str, np.ndarray | pa.ChunkedArray],
        histograms: Mapping[str, np.ndarray],
    ) -> DatasetStats:
        """The stats of other frames, laid out as these: their numeric columns (numpy or arrow,
        one row per frame) and each camera's histogram of downsampled pixels."""
        values = {
            name: ColumnValues.of(_rows(columns[name], old.dims))
            for name, old in self.values.items()
        }
        counts = {name: np.asarray(histograms[name], np.int64) for name in self.histograms}
        return DatasetStats(self.order, counts, values, self.integers)

    def merged(self, other: DatasetStats) -> DatasetStats:
        """The stats of both sets of frames."""
        histograms = {name: h + other.histograms[name] for name, h in self.histograms.items()}
        values = {name: v.merged(other.values[name]) for name, v in self.values.items()}
        return DatasetStats(self.order, histograms, values, self.integers)

    def rebuilt(self, root: Path, episodes: int, frames: int) -> DatasetStats:
        """These stats merged with those of episodes 0..episodes-1, one episode at a time in
        order, as their commits merged them (so the quantile sketches come out the same), from
        their files: saved image histograms, data rows found through meta/episodes (per-episode
        and packed files alike). `frames`: how many rows info.json counts."""
        if episodes == 0:
            return self
        hist_paths = [layout.histograms_path(root, e) for e in range(episodes)]
        absent = [str(p.relative_to(root)) for p in hist_paths if not p.is_file()]
        if absent:
            raise ConfigError(
                f"{root}: meta/info.json counts {episodes} episodes but {len(absent)} of "
                f"their image histograms are missing, e.g. {absent[:3]}"
            )
        merged, rows = self, 0
        for columns, path in zip(self._episode_rows(root, episodes), hist_paths, strict=True):
            histograms = _add_histograms(root, path, dict.fromkeys(self.histograms, 0))
            merged = merged.merged(self.episode_stats(columns, histograms))
            rows += len(columns["index"])
        if rows != frames:
            raise ConfigError(
                f"{root}: data files hold {rows} rows, meta/info.json counts total_frames={frames}"
            )
        return merged

    def _episode_rows(self, root: Path, episodes: int) -> Iterator[dict[str, pa.ChunkedArray]]:
        """Each episode's numeric columns in order; files are read ahead on other threads."""
        table = read_episodes(root, episodes, _ROW_KEYS)
        chunk, file, start, end = (table.column(k).to_numpy() for k in _ROW_KEYS)
        paths = [root / layout.DATA_PATH.format(chunk_index=int(c), file_index=int(f))
                 for c, f in zip(chunk, file, strict=True)]  # fmt: skip
        missing = sorted({str(p.relative_to(root)) for p in paths if not p.is_file()})
        if missing:
            raise ConfigError(f"{root}: data files of committed episodes are missing, e.g. "
                              f"{missing[:3]}")  # fmt: skip
        names = list(self.values)
        runs = [p for i, p in enumerate(paths) if i == 0 or paths[i - 1] != p]  # packed files
        tables = _read_ahead(runs, names)
        current, table = None, None
        for path, a, b in zip(paths, start, end, strict=True):
            if current != path:
                current, table = next(tables)
            index = table.column("index").to_numpy()
            rows = table.filter(pa.array((index >= a) & (index < b)))
            yield {name: rows.column(name) for name in names}

    def stats(self) -> dict[str, Stats]:
        """LeRobot's stats of every camera and numeric column, in info.json's order."""
        out: dict[str, Stats] = {}
        for name in self.order:
            if name in self.histograms:
                out[name] = stats_from_histograms(self.histograms[name])
            else:
                out[name] = self.values[name].stats(integer=name in self.integers)
        return out

    # -- meta/shmpipe/state.npz ------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {f"hist.{name}": h for name, h in self.histograms.items()}
        for name, values in self.values.items():
            out.update(values.to_arrays(f"col.{name}."))
        return out

    def from_arrays(self, arrays: Mapping[str, np.ndarray]) -> DatasetStats:
        """Stats laid out as these, from to_arrays' arrays; ValueError or KeyError if they do
        not fit."""
        histograms = {}
        for name, empty in self.histograms.items():
            histograms[name] = np.asarray(arrays[f"hist.{name}"], np.int64)
            if histograms[name].shape != empty.shape:
                raise ValueError(f"hist.{name}: shape {histograms[name].shape}, not {empty.shape}")
        values = {
            name: ColumnValues.from_arrays(arrays, f"col.{name}.", old.dims)
            for name, old in self.values.items()
        }
        return DatasetStats(self.order, histograms, values, self.integers)


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


def _read_data(path: Path, names: list[str]) -> pa.Table:
    return read_parquet(path, "/".join(path.parts[-3:]), names)


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


def _read_ahead(paths: list[Path], names: list[str]) -> Iterator[tuple[Path, pa.Table]]:
    """(path, table of its `names` columns) in order, reading up to READ_AHEAD files ahead."""
    for path, table in read_ahead(paths, lambda p: _read_data(p, names), READ_AHEAD):
        yield path, table.result()


def _rows(column: np.ndarray | pa.ChunkedArray, width: int) -> np.ndarray:
    """(frames, width) values of a column given as numpy or arrow (plain or fixed-size lists)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            column = column.flatten()
        column = column.to_numpy(zero_copy_only=False)  # bools are bits: copied
    return np.asarray(column).reshape(-1, width)
