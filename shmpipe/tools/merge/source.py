"""One source's part of a merge: its episodes renumbered into the output folder, in one
streaming pass (shmpipe.dataset.scan).

Data rows get their new episode_index, index and task_index and are written a file per run of
episodes; video files are copied byte for byte (an episode's frames keep their place in the
file, so from/to timestamps stay); meta/episodes rows get the new indices, file numbers and
exact per-episode stats; each episode's image histograms are saved beside them. What the
source contributes to the output's stats (its mergeable summary) is saved last, as
meta/shmpipe/merge/source-NNN.npz: that file marks the source done, so a resumed merge
copies it again only if it is absent. Every file goes through a temporary name and a rename.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe.dataset import layout
from shmpipe.dataset.exact_stats import empty_stats, episode_stats, stats_columns
from shmpipe.dataset.files import publish, write_atomically
from shmpipe.dataset.reader import DATA_PREFIX, EPISODES_PREFIX, video_prefix
from shmpipe.dataset.scan import Episode, Features, scan
from shmpipe.tools.merge.plan import MergePlan, SourcePlan

MERGE_DIR = layout.MERGE_DIR
ROW_GROUP = 100  # meta/episodes rows per row group


def done_path(out: Path, number: int) -> Path:
    return out / MERGE_DIR / f"source-{number:03d}.npz"


def copy_source(out: Path, plan: MergePlan, source: SourcePlan, advance=None) -> None:
    """Write the source's episodes into `out` (the merge's folder) and mark it done.
    advance(1) is called after each episode."""
    features = plan.features
    empty = empty_stats(features)
    summary = empty
    data = _DataFiles(out, plan.schema, source.first_data_file)
    videos = {c: _VideoFiles(out, c, n) for c, n in source.first_video_file.items()}
    meta = _EpisodesFile(out, layout.episodes_path(out, source.number), source.number)
    try:
        for episode in scan(source.root, source.info, Features.of(source.info)):
            rows = _renumbered(episode, source, plan.schema)
            number = episode.meta["episode_index"] + source.first_episode
            location = data.write(episode.meta, source, rows)
            for files in videos.values():
                location.update(files.copy(episode.meta, source))
            renumbered = Episode(episode.meta, rows, episode.histograms)
            part, exact = episode_stats(empty, features, renumbered)
            summary = summary.merged(part)
            if episode.histograms:
                hist = layout.histograms_path(out, number)
                write_atomically(hist, lambda f, h=episode.histograms: np.savez(f, **h))
            meta.add(number, episode, location, exact, features.order)
            if advance is not None:
                advance(1)
        data.close()
        meta.close()
    except BaseException:
        data.abort()
        meta.abort()
        raise
    arrays = summary.to_arrays()
    write_atomically(done_path(out, source.number), lambda f: np.savez(f, **arrays))


def _renumbered(episode: Episode, source: SourcePlan, schema: pa.Schema) -> pa.Table:
    rows = episode.rows
    n = rows.num_rows
    new_index = rows.column("index").to_numpy() + source.first_index
    tasks = np.asarray(source.task_map, np.int64)[rows.column("task_index").to_numpy()]
    replaced = {
        "episode_index": np.full(n, episode.meta["episode_index"] + source.first_episode),
        "index": new_index,
        "task_index": tasks,
    }
    for name, values in replaced.items():
        rows = rows.set_column(rows.schema.get_field_index(name), name,
                               pa.array(values, pa.int64()))  # fmt: skip
    return rows.select(schema.names).cast(schema)


class _DataFiles:
    """The output's data files: a new one for each run of episodes the source keeps in one
    file, written through a temporary name."""

    def __init__(self, out: Path, schema: pa.Schema, first: int) -> None:
        self.out, self.schema, self.number = out, schema, first - 1
        self.source_file: tuple[int, int] | None = None
        self.writer: pq.ParquetWriter | None = None
        self.partial: Path | None = None

    def write(self, meta: dict, source: SourcePlan, rows: pa.Table) -> dict:
        here = (meta[DATA_PREFIX + "chunk_index"], meta[DATA_PREFIX + "file_index"])
        if here != self.source_file:
            self.close()
            self.source_file, self.number = here, self.number + 1
            path = layout.data_path(self.out, self.number)
            self.partial = _partial(path)
            self.writer = pq.ParquetWriter(self.partial, self.schema, compression="snappy")
        self.writer.write_table(rows)
        chunk, file = layout.chunk_and_file(self.number)
        first = meta["dataset_from_index"] + source.first_index
        return {DATA_PREFIX + "chunk_index": chunk, DATA_PREFIX + "file_index": file,
                "dataset_from_index": first, "dataset_to_index": first + rows.num_rows}  # fmt: skip

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            _sync(self.partial)
            publish(self.partial, layout.data_path(self.out, self.number))

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.partial.unlink(missing_ok=True)


class _VideoFiles:
    """One camera's video files, each copied once, numbered in the order episodes reach them."""

    def __init__(self, out: Path, camera: str, first: int) -> None:
        self.out, self.camera, self.next = out, camera, first
        self.numbers: dict[Path, int] = {}

    def copy(self, meta: dict, source: SourcePlan) -> dict:
        prefix = video_prefix(self.camera)
        path = source.root / source.info["video_path"].format(
            video_key=self.camera, chunk_index=meta[prefix + "chunk_index"],
            file_index=meta[prefix + "file_index"])  # fmt: skip
        if path not in self.numbers:
            self.numbers[path] = self.next
            self.next += 1
            target = layout.video_path(self.out, self.camera, self.numbers[path])
            write_atomically(target, lambda f: _copy_into(path, f))
        chunk, file = layout.chunk_and_file(self.numbers[path])
        return {prefix + "chunk_index": chunk, prefix + "file_index": file,
                prefix + "from_timestamp": meta[prefix + "from_timestamp"],
                prefix + "to_timestamp": meta[prefix + "to_timestamp"]}  # fmt: skip


class _EpisodesFile:
    """The source's meta/episodes file in the output, written ROW_GROUP rows at a time."""

    def __init__(self, out: Path, path: Path, number: int) -> None:
        self.path, self.number = path, number
        self.pending: list[tuple[dict, dict]] = []
        self.writer: pq.ParquetWriter | None = None
        self.partial: Path | None = None
        self.order: list[str] = []

    def add(self, number: int, episode: Episode, location: dict, exact: dict, order) -> None:
        chunk, file = layout.chunk_and_file(self.number)
        row = {"episode_index": number, "tasks": episode.meta["tasks"],
               "length": episode.meta["length"], **location,
               EPISODES_PREFIX + "chunk_index": chunk,
               EPISODES_PREFIX + "file_index": file}  # fmt: skip
        self.order = list(order)
        self.pending.append((row, exact))
        if len(self.pending) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        rows = [row for row, _ in self.pending]
        head = [k for k in rows[0] if not k.startswith(EPISODES_PREFIX)]
        columns = {k: pa.array([r[k] for r in rows], _type(k)) for k in head}
        columns.update(stats_columns(self.order, [exact for _, exact in self.pending]))
        for k in (EPISODES_PREFIX + "chunk_index", EPISODES_PREFIX + "file_index"):
            columns[k] = pa.array([r[k] for r in rows], pa.int64())
        table = pa.table(columns)
        if self.writer is None:
            self.partial = _partial(self.path)
            self.writer = pq.ParquetWriter(self.partial, table.schema)
        self.writer.write_table(table.cast(self.writer.schema))
        self.pending = []

    def close(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            _sync(self.partial)
            publish(self.partial, self.path)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.partial.unlink(missing_ok=True)


def _type(column: str) -> pa.DataType:
    if column == "tasks":
        return pa.list_(pa.string())
    return pa.float64() if column.endswith("_timestamp") else pa.int64()


def _copy_into(source: Path, target) -> None:
    with open(source, "rb") as f:
        shutil.copyfileobj(f, target, 1 << 20)


def _partial(path: Path) -> Path:
    """A temporary name beside `path`, for a file written in parts and renamed when whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return layout.staged(path)


def _sync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
