"""Checks of a LeRobot data file's rows: an episode's rows, and a column as a matrix.

An episode's rows are one block of its data file, with frame_index 0..n-1, timestamp
frame_index / fps and a global `index` that starts where meta/episodes says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from shmpipe.dataset.feature_types import from_info
from shmpipe.dataset.untrusted import DamagedDatasetError, file_problem, read_parquet
from shmpipe.errors import ConfigError
from shmpipe.tools.verify.video import TOLERANCE_S

ROW_COLUMNS = ("episode_index", "frame_index", "index", "timestamp")


def episode_problems(
    table: pa.Table, episode: int, length: int, start: int, fps: float
) -> list[str]:
    """What is wrong with one episode's rows in its data file (first problem of each kind)."""
    missing = [c for c in ROW_COLUMNS if c not in table.column_names]
    if missing:
        return [f"the data file has no {', '.join(missing)} column"]
    at = np.flatnonzero(table.column("episode_index").to_numpy() == episode)
    if len(at) == 0:
        return ["no rows in the data file"]
    out = []
    if at[-1] - at[0] + 1 != len(at):
        others = at[-1] - at[0] + 1 - len(at)
        out.append(f"rows are not one block: {others} rows of other episodes among them")
    if len(at) != length:
        out.append(f"{len(at)} rows, meta/episodes says length {length}")
    frame_index = table.column("frame_index").to_numpy()[at]
    index = table.column("index").to_numpy()[at]
    stored = table.column("timestamp").to_numpy()[at]
    timestamp, exact = stored.astype(np.float64), frame_index / fps
    for what, found, want, tolerance in (
        ("frame_index", frame_index, np.arange(len(at)), 0),
        ("index", index, start + np.arange(len(at)), 0),
        ("timestamp", timestamp, exact, TOLERANCE_S + stored_precision(exact, stored.dtype)),
    ):
        wrong = np.flatnonzero(np.abs(found - want) > tolerance)
        if len(wrong):
            i = wrong[0]
            out.append(f"{what} {found[i]} at row {i} of the episode, expected {want[i]}")
    return out


def stored_precision(seconds: np.ndarray, dtype: np.dtype) -> np.ndarray | float:
    """How far the nearest value of `dtype` may be from each of `seconds`: half its spacing
    there. LeRobot stores timestamps as float32, whose steps reach 2.4e-4 s past 2,048 s: more
    than the 1e-4 s tolerance alone, so a long episode's exact i / fps rows must still pass."""
    if not np.issubdtype(dtype, np.floating):
        return 0.0
    return np.spacing(np.abs(seconds).astype(dtype)).astype(np.float64) / 2


def unlisted_rows(table: pa.Table, episodes: list[int]) -> int:
    """How many rows of the data file belong to none of `episodes`."""
    if "episode_index" not in table.column_names:
        return 0  # episode_problems says so
    return int(np.count_nonzero(~np.isin(table.column("episode_index").to_numpy(), episodes)))


def layout_problem(entry: dict, stored: pa.DataType) -> str | None:
    """How a numeric feature's column is not laid out as LeRobot's loader casts it (a (1,)
    feature as a plain column, an (n,) one as a list of n, of info.json's dtype), or None.
    LeRobot cannot load a (1,) feature stored as a list (shmpipe before its feature dtypes)."""
    try:
        spec = from_info("", entry)
    except (ConfigError, TypeError, ValueError):
        return None  # not numeric: not checked here
    want = spec.arrow_type()
    if stored == want or len(spec.shape) != 1:
        return None
    listed = pa.types.is_list(stored) or pa.types.is_fixed_size_list(stored)
    if listed and not spec.scalar and stored.value_type == want.value_type:
        if pa.types.is_list(stored) or stored.list_size == want.list_size:
            return None  # a plain list (LeRobot's aggregate_datasets writes one) loads alike
    if spec.scalar and listed:
        return (f"stored as {stored}, info.json says {spec.dtype} {list(spec.shape)}: LeRobot "
                f"stores and loads that as a plain {want} column, and cannot load this one")
    return f"stored as {stored}, expected {want} (info.json: {spec.dtype} {list(spec.shape)})"


def matrix(column: pa.ChunkedArray) -> np.ndarray:
    """(rows, dims) float64 of a scalar or fixed-size-list column."""
    values = column.to_numpy(zero_copy_only=False)
    if values.dtype == object:
        values = np.stack(values)
    return values.reshape(len(values), -1).astype(np.float64)


class DataFiles:
    """Data files read one at a time, so that verifying keeps one in memory, whatever the
    dataset's size: the file read last is kept for the episodes that follow in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.last: tuple[str, pa.Table] | None = None
        self.seen: set[str] = set()

    def read(self, file: str) -> tuple[pa.Table | None, str | None, bool]:
        """(table or None, why not, whether this is the first time `file` is asked for)."""
        first = file not in self.seen
        self.seen.add(file)
        if self.last is not None and self.last[0] == file:
            return self.last[1], None, first
        path = self.root / file
        if file_problem(path) == "missing":
            return None, "data file missing", first
        try:
            table = read_parquet(path, file)
        except DamagedDatasetError as error:
            return None, str(error).removeprefix(f"{file}: "), first
        self.last = (file, table)
        return table, None, first
