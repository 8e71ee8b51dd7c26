"""`pack`: merge a dataset's per-episode files into LeRobot's size-bounded files for the Hub.

Recording writes one file per episode of each kind (saving stays O(episode)); a large dataset is
then tens of thousands of files. pack merges them as LeRobot's aggregate does: episodes in order,
a file takes the next source until the two together reach the size limit, then the next file
index (chunk-XXX rolls over every `chunks_size` files). Videos are remuxed, never re-encoded.

It packs only what `shmpipe verify` finds whole (after finishing an interrupted pack): a
hostile or damaged dataset is refused before a file is opened or changed. It runs only while no
recorder holds the root (the writer lock): the swap renames files a
recorder's resume reads, and running beside the control loop would compete for its disk.

Crash safety, in this order (the journal is meta/shmpipe/pack.json):
1. journal "writing", listing every new file as `<final>.packing`; write those files
   (data, videos, then meta/episodes). A crash here leaves the old layout whole; the next
   open (remove_unfinished) or pack deletes the `.packing` files.
2. journal "swapping", plus the old files to delete: the commit point.
3. delete the old files that no new one replaces, then rename data, videos, then meta/episodes
   into place (new meta/episodes last, each kind's highest file number first: a globbing
   reader never finds a row twice); delete the journal. A crash in here is rolled forward by
   the next open or pack (shmpipe.dataset.pack_journal.finish_pack).
info.json, stats.json, tasks.parquet and the image histograms are not touched.

Memory stays bounded as the dataset grows: the plan holds a few numbers per episode (where its
rows and frames are), and the new meta/episodes files are written from the old ones one source
file at a time; verify, run first, streams as well.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe.dataset import info as info_json
from shmpipe.dataset import layout
from shmpipe.dataset.cleanup import remove_unfinished
from shmpipe.dataset.files import take_lock
from shmpipe.dataset.pack_journal import PACK_JOURNAL, finish_pack, write_journal
from shmpipe.dataset.reader import DATA_PREFIX, EPISODES_PREFIX, read_episodes, video_prefix
from shmpipe.errors import ConfigError, UsageError
from shmpipe.tools.pack import files
from shmpipe.tools.progress import NO_PROGRESS, ProgressBar
from shmpipe.tools.verify.reading import blocking_problems, read_info
from shmpipe.tools.verify.verifier import check_dataset

# LeRobot's defaults (lerobot/datasets/utils.py); meta/episodes files are bounded by the data
# default whatever the data limit, as LeRobot's aggregate_metadata does.
DEFAULT_DATA_FILE_SIZE_IN_MB = info_json.DATA_FILES_SIZE_IN_MB
DEFAULT_VIDEO_FILE_SIZE_IN_MB = info_json.VIDEO_FILES_SIZE_IN_MB
MB = 1024**2
VIDEO_KEYS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


class NotPackableError(ConfigError):
    """verify finds problems in the dataset: pack changed nothing. `problems`: one line each."""

    def __init__(self, root: Path, problems: list[str]) -> None:
        super().__init__(f"{root}: not packed: `shmpipe verify` finds {len(problems)} "
                         "problems (nothing was changed):\n  " + "\n  ".join(problems))  # fmt: skip
        self.problems = problems


@dataclass(frozen=True)
class PackReport:
    """What pack did: files and bytes of data/, videos/ and meta/episodes/ before and after."""

    root: Path
    episodes: int
    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int
    seconds: float

    def line(self) -> str:
        return (
            f"packed {self.episodes} episodes in {self.root}: {self.files_before} -> "
            f"{self.files_after} files, {self.bytes_before} -> {self.bytes_after} bytes, "
            f"{self.seconds:.2f} s"
        )


@dataclass
class _Kind:
    """One kind of file (data, one camera's videos, meta/episodes): the source file of each
    episode, and the size-bounded groups of sources that become the new files 0, 1, ..."""

    template: Callable[[int], Path]  # file number -> path
    source_of: np.ndarray  # episode -> source file number
    groups: list[list[int]] = field(default_factory=list)

    def changed(self) -> list[int]:
        """The groups that make a new file (not just the one file already in place)."""
        return [g for g, sources in enumerate(self.groups) if sources != [g]]

    def group_of(self) -> np.ndarray:
        """episode -> new file number."""
        group = {s: g for g, sources in enumerate(self.groups) for s in sources}
        return np.array([group[s] for s in self.source_of.tolist()], np.int64)


def pack(
    root: str | os.PathLike,
    data_files_size_in_mb: float | None = None,
    video_files_size_in_mb: float | None = None,
    progress: ProgressBar = NO_PROGRESS,
) -> PackReport:
    """Merge the dataset's files into LeRobot's size-bounded files (limits default to
    info.json's, else LeRobot's 100 MB data / 200 MB video). Rows and video packets are copied
    unchanged; meta/episodes gets the new file indices and video time ranges. Refuses with a
    ConfigError if `root` is no dataset or a recorder holds it. Packing again merges what was
    recorded since."""
    started = time.perf_counter()
    root = Path(root)
    read_info(root)  # NotADatasetError before the lock file is made
    try:
        lock = take_lock(root)
    except UsageError:
        raise ConfigError(
            f"{root}: a recorder holds the dataset ({layout.LOCK_PATH}); pack it once that "
            "recorder is closed"
        ) from None
    with lock:
        info = read_info(root)
        problems = [f"{file}: {problem}" for file, problem in blocking_problems(root, info)]
        if problems and not problems[0].startswith(PACK_JOURNAL):  # a past pack ends below
            raise NotPackableError(root, problems)
        limits = (
            _limit(data_files_size_in_mb, info, "data_files_size_in_mb"),
            _limit(video_files_size_in_mb, info, "video_files_size_in_mb"),
        )
        remove_unfinished(root, info["total_episodes"], opening=True)  # also ends a past pack
        problems = [p.line() for p in check_dataset(root, progress=progress).problems]
        if problems:
            raise NotPackableError(root, problems)
        before = files.managed_files(root)
        cameras = info_json.camera_names(info)
        episodes = read_episodes(root, info["total_episodes"], _location_columns(cameras))
        kinds = _plan(root, episodes, cameras, *limits)
        if any(kind.changed() for kind in kinds.values()):
            _swap_in(root, kinds, episodes, cameras, progress)
        after = files.managed_files(root)
    return PackReport(root, len(episodes), before[0], after[0], before[1], after[1],
                      time.perf_counter() - started)  # fmt: skip


def _location_columns(cameras: list[str]) -> list[str]:
    """The meta/episodes columns that say where an episode's rows, frames and row are."""
    names = [DATA_PREFIX + "chunk_index", DATA_PREFIX + "file_index"]
    for camera in cameras:
        names += [video_prefix(camera) + key for key in VIDEO_KEYS]
    return [*names, EPISODES_PREFIX + "chunk_index", EPISODES_PREFIX + "file_index"]


def _limit(given: float | None, info: dict, key: str) -> float:
    default = (
        DEFAULT_DATA_FILE_SIZE_IN_MB if key.startswith("data") else DEFAULT_VIDEO_FILE_SIZE_IN_MB
    )
    limit = given if given is not None else info.get(key, default)
    if not limit > 0:
        raise ConfigError(f"pack: {key} must be > 0, got {limit}")
    return float(limit)


def _plan(
    root: Path, episodes: pa.Table, cameras: list[str], data_mb: float, video_mb: float
) -> dict[str, _Kind]:
    """The kinds of file and their groups, keyed "data", each camera, and "meta/episodes"."""

    def kind(prefix: str, path: Callable[[int], Path]) -> _Kind:
        chunk = episodes.column(prefix + "chunk_index").to_numpy()
        file = episodes.column(prefix + "file_index").to_numpy()
        return _Kind(path, chunk * layout.CHUNKS_SIZE + file)

    kinds = {"data": kind(DATA_PREFIX, partial(layout.data_path, root))}
    for camera in cameras:
        kinds[camera] = kind(video_prefix(camera), partial(layout.video_path, root, camera))
    kinds["meta/episodes"] = kind(EPISODES_PREFIX, partial(layout.episodes_path, root))
    for name, k in kinds.items():
        mb = data_mb if name == "data" else DEFAULT_DATA_FILE_SIZE_IN_MB
        mb = video_mb if name in cameras else mb
        sources = list(dict.fromkeys(k.source_of.tolist()))
        k.groups = _groups(sources, k.template, mb * MB, parquet=name not in cameras)
    return kinds


def _groups(
    sources: list[int], path: Callable[[int], Path], limit: float, parquet: bool
) -> list[list[int]]:
    """LeRobot's rule: the next source joins the current file unless their sizes together
    reach `limit` (a parquet file's size is its uncompressed size, as LeRobot measures it)."""
    groups: list[list[int]] = []
    total = 0
    for source in sources:
        size = _size(path(source), parquet)
        if groups and total + size < limit:
            groups[-1].append(source)
            total += size
        else:
            groups.append([source])
            total = size
    return groups


def _size(path: Path, parquet: bool) -> int:
    if not parquet:
        return path.stat().st_size
    meta = pq.read_metadata(path)
    return sum(
        meta.row_group(g).column(c).total_uncompressed_size
        for g in range(meta.num_row_groups)
        for c in range(meta.row_group(g).num_columns)
    )


def _swap_in(root: Path, kinds: dict[str, _Kind], episodes: pa.Table, cameras: list[str],
             progress: ProgressBar) -> None:  # fmt: skip
    """Write the new files under temporary names, commit the journal, rename them into place
    and delete the old files (see the module's docstring for the order)."""
    meta = kinds["meta/episodes"]  # every meta/episodes file is rewritten: its rows change
    renames = [  # highest file number first (shmpipe.dataset.pack_journal says why)
        (name, g, k.template(g))
        for name, k in kinds.items()
        for g in reversed(range(len(k.groups)) if name == "meta/episodes" else k.changed())
    ]
    temporary = {(name, g): final.with_name(final.name + layout.PACKING)
                 for name, g, final in renames}  # fmt: skip
    journal = {
        "state": "writing",
        "renames": [[_rel(root, temporary[n, g]), _rel(root, f)] for n, g, f in renames],
        "remove": [],
    }
    write_journal(root, journal)
    advance = progress.phase("writing packed files", len(renames))
    for g in kinds["data"].changed():
        paths = [kinds["data"].template(s) for s in kinds["data"].groups[g]]
        files.concatenate_parquet(paths, temporary["data", g])
        advance(1)
    table = episodes
    for camera in cameras:
        k = kinds[camera]
        starts: dict[int, Fraction] = {s: Fraction(0) for s in k.source_of.tolist()}
        for g in k.changed():
            sources = k.groups[g]
            found = files.remux_videos([k.template(s) for s in sources], temporary[camera, g])
            starts.update(zip(sources, found, strict=True))
            advance(1)
        offset = np.array([float(starts[s]) for s in k.source_of.tolist()])
        table = _moved(table, video_prefix(camera), k.group_of(), offset)
    table = _moved(
        _moved(table, DATA_PREFIX, kinds["data"].group_of()), EPISODES_PREFIX, meta.group_of()
    )
    for g, sources in enumerate(meta.groups):
        files.concatenate_episodes(
            [meta.template(s) for s in sources], table, temporary["meta/episodes", g]
        )
        advance(1)
    finals = {_rel(root, f) for _, _, f in renames}
    old = [
        _rel(root, k.template(s))
        for name in ["meta/episodes", *(n for n in kinds if n != "meta/episodes")]
        for k in [kinds[name]]
        for g in (range(len(k.groups)) if name == "meta/episodes" else k.changed())
        for s in k.groups[g]
    ]
    journal.update(state="swapping", remove=[p for p in old if p not in finals])
    write_journal(root, journal)  # the commit point
    finish_pack(root)


def _moved(table: pa.Table, prefix: str, numbers: np.ndarray, offset=None) -> pa.Table:
    """`table` with the chunk/file index columns under `prefix` set to `numbers`, and (videos)
    from/to_timestamp shifted by `offset` seconds."""
    columns = {
        prefix + "chunk_index": pa.array(numbers // layout.CHUNKS_SIZE, pa.int64()),
        prefix + "file_index": pa.array(numbers % layout.CHUNKS_SIZE, pa.int64()),
    }
    if offset is not None:
        for key in ("from_timestamp", "to_timestamp"):
            old = table.column(prefix + key).to_numpy()
            columns[prefix + key] = pa.array(old + offset, pa.float64())
    for name, values in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, values)
    return table


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
