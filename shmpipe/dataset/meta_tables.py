"""The parquet tables of meta/: an episode's meta/episodes row, and meta/tasks.parquet with
the list of tasks it holds, in LeRobot v3.0's columns, types and schema metadata."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe.dataset import layout
from shmpipe.dataset.files import write_atomically, write_unpublished
from shmpipe.dataset.reader import DATA_PREFIX, EPISODES_PREFIX, video_prefix
from shmpipe.dataset.untrusted import DamagedDatasetError, read_parquet
from shmpipe.errors import ConfigError
from shmpipe.stats.columns import Stats
from shmpipe.stats.images import STAT_KEYS

# tasks.parquet as pandas writes a frame indexed by task text (LeRobot reads it with pandas).
PANDAS_VERSION = "2.3.3"
TASK_COLUMNS = ("task_index", "__index_level_0__")


def episodes_row(
    episode: int,
    first_index: int,
    length: int,
    fps: int,
    tasks: list[str],
    cameras: Sequence[str],
    stats: Mapping[str, Stats],
) -> pa.Table:
    """The episode's one-row meta/episodes table. first_index: dataset `index` of its first
    frame. Stats columns go in LeRobot's order: numeric columns, then cameras."""
    chunk, file = layout.chunk_and_file(episode)
    cols: dict[str, tuple[pa.DataType, object]] = {
        "episode_index": (pa.int64(), episode),
        "tasks": (pa.list_(pa.string()), tasks),
        "length": (pa.int64(), length),
        DATA_PREFIX + "chunk_index": (pa.int64(), chunk),
        DATA_PREFIX + "file_index": (pa.int64(), file),
        "dataset_from_index": (pa.int64(), first_index),
        "dataset_to_index": (pa.int64(), first_index + length),
    }
    for name in cameras:
        prefix = video_prefix(name)
        cols[prefix + "chunk_index"] = (pa.int64(), chunk)
        cols[prefix + "file_index"] = (pa.int64(), file)
        cols[prefix + "from_timestamp"] = (pa.float64(), 0.0)
        cols[prefix + "to_timestamp"] = (pa.float64(), length / fps)
    for name in [*(n for n in stats if n not in cameras), *cameras]:
        for key in STAT_KEYS:
            value = stats[name][key]
            cols[f"stats/{name}/{key}"] = (stat_type(value), value.tolist())
    cols[EPISODES_PREFIX + "chunk_index"] = (pa.int64(), chunk)
    cols[EPISODES_PREFIX + "file_index"] = (pa.int64(), file)
    arrays = [pa.array([value], type) for type, value in cols.values()]
    return pa.Table.from_arrays(arrays, names=list(cols))


def stat_type(value: np.ndarray) -> pa.DataType:
    """LeRobot's column type for a stat: nested lists as deep as the array, int64 or double."""
    type_ = pa.int64() if np.issubdtype(value.dtype, np.integer) else pa.float64()
    for _ in range(value.ndim):
        type_ = pa.list_(type_)
    return type_


def tasks_table(texts: list[str]) -> pa.Table:
    """tasks.parquet as LeRobot writes it: pandas frame of task_index, indexed by task text."""
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": PANDAS_VERSION,
    }
    schema = pa.schema(
        [("task_index", pa.int64()), ("__index_level_0__", pa.string())],
        metadata={"pandas": json.dumps(pandas_meta)},
    )
    return pa.table([pa.array(range(len(texts)), pa.int64()), pa.array(texts)], schema=schema)


def task_texts(table: pa.Table, path: Path) -> list[str]:
    """The task texts of a tasks.parquet, read by meaning: the pandas index that holds them is
    `__index_level_0__` (pandas' name for an unnamed index: LeRobot 0.4) or `task` (0.5 and
    later name it), whichever the pandas metadata names; without that metadata, the one text
    column. DamagedDatasetError naming the file and field if there is no such column."""
    if "task_index" not in table.column_names or not pa.types.is_integer(
        table.schema.field("task_index").type
    ):
        raise DamagedDatasetError(f"{path}: no integer column task_index")
    try:
        index_columns = (table.schema.pandas_metadata or {}).get("index_columns") or []
    except (ValueError, AttributeError):  # metadata that is no JSON object: go by the columns
        index_columns = []
    named = [c for c in index_columns if isinstance(c, str) and c in table.column_names]
    texts = [n for n in named or table.column_names
             if pa.types.is_string(table.schema.field(n).type)
             or pa.types.is_large_string(table.schema.field(n).type)]  # fmt: skip
    if len(texts) != 1:
        raise DamagedDatasetError(
            f"{path}: expected one text column (the task, the pandas index), found "
            f"{table.column_names}"
        )
    return table.column(texts[0]).to_pylist()


class TaskList:
    """The dataset's tasks in index order: the committed ones, then those first seen since
    (by the open episode). `save` writes meta/tasks.parquet only if what it holds changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.indices: dict[str, int] = {}
        self.committed = 0
        self._on_disk: list[str] = []  # what tasks.parquet holds

    def load(self, committed: int) -> None:
        """Read tasks.parquet and keep its first `committed` tasks (info.json's total_tasks);
        tasks after those were saved for an episode that was never committed."""
        if self.path.exists():
            table = read_parquet(self.path, layout.TASKS_PATH)
            self._on_disk = task_texts(table, self.path)
            indices = table.column("task_index").to_pylist()
            if indices != list(range(len(self._on_disk))):
                raise ConfigError(f"{self.path}: task_index is not 0..{len(self._on_disk) - 1}")
        if len(self._on_disk) < committed:
            raise ConfigError(
                f"{self.path}: {len(self._on_disk)} tasks, info.json counts {committed}"
            )
        self.indices = {text: i for i, text in enumerate(self._on_disk[:committed])}
        self.committed = committed

    def index(self, task: str) -> int:
        """The index of `task`; a new task gets the next one."""
        return self.indices.setdefault(task, len(self.indices))

    def texts(self) -> list[str]:
        return list(self.indices)

    def forget_uncommitted(self) -> None:
        self.indices = dict(list(self.indices.items())[: self.committed])

    def stage(self, count: int | None = None) -> Path | None:
        """tasks.parquet holding every task (the first `count`: a task first seen after the
        commit began is the next episode's) written under its staged name (returned) for a
        commit to publish; None if the file holds them already."""
        texts = self.texts()[:count]
        if texts == self._on_disk or not texts:
            return None
        table = tasks_table(texts)
        return write_unpublished(self.path, lambda f: pq.write_table(table, f))

    def published(self, count: int | None = None) -> None:
        """The staged tasks.parquet is in place and counted: its tasks are committed."""
        self._on_disk = self.texts()[:count]
        self.committed = len(self._on_disk)

    def save(self) -> None:
        """tasks.parquet holding every task (none: no file), unless it holds them already."""
        texts = self.texts()
        if texts == self._on_disk:
            return
        if texts:
            table = tasks_table(texts)
            write_atomically(self.path, lambda f: pq.write_table(table, f))
        else:
            self.path.unlink(missing_ok=True)
        self._on_disk = texts
