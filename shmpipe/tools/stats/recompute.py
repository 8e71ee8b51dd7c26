"""`restat`: recompute a LeRobot v3.0 dataset's stats exactly, in place.

One streaming pass (shmpipe.dataset.scan, the same as merge's): numpy over every row, and
every downsampled pixel (shmpipe's saved histograms, else the decoded frames). It writes
meta/stats.json and the per-episode stats of meta/episodes, so the two agree again (LeRobot's
merge leaves averaged quantiles and stale index stats in both: lerobot#4156, #3788). Nothing
else changes: data, videos and info.json stay byte for byte.

Crash-safe with pack's journal (meta/shmpipe/pack.json): the new files are written under
temporary names, the journal's "swapping" is the commit point, and an interrupted run is
finished by the next `shmpipe stats`, `shmpipe pack` or recorder open (verify names it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe.dataset import layout
from shmpipe.dataset.exact_stats import differences, empty_stats, episode_stats, stats_columns
from shmpipe.dataset.files import take_lock, write_atomically
from shmpipe.dataset.pack_journal import finish_pack, write_journal
from shmpipe.dataset.reader import EPISODES_PREFIX, episodes_files
from shmpipe.dataset.scan import Features, scan
from shmpipe.dataset.stats import stats_json
from shmpipe.dataset.untrusted import DamagedDatasetError, read_json, read_parquet
from shmpipe.errors import ConfigError, UsageError
from shmpipe.tools.progress import NO_PROGRESS, Advance, ProgressBar
from shmpipe.tools.verify.reading import read_info
from shmpipe.tools.verify.verifier import check_dataset


class NotWholeError(ConfigError):
    """verify finds problems other than stats: nothing was changed."""


@dataclass
class StatsReport:
    root: Path
    episodes: int
    differences: list[str] = field(default_factory=list)  # largest first
    written: bool = False
    seconds: float = 0.0

    def lines(self) -> list[str]:
        did = "rewrote" if self.written else "would rewrite" if self.differences else "checked"
        head = f"{self.root}: {did} the stats of {self.episodes} episodes in {self.seconds:.2f} s"
        if not self.differences:
            return [head + "; stats.json already held the exact stats"]
        return [head + "; largest differences of stats.json:",
                *(f"  {line}" for line in self.differences)]  # fmt: skip


def restat(root, write: bool = True, progress: ProgressBar = NO_PROGRESS) -> StatsReport:
    """Exact stats of the dataset at `root`, compared with its stats.json and (write=True)
    written in place. ConfigError if a recorder holds it; NotWholeError if verify finds
    problems other than stats (nothing changed)."""
    started = time.perf_counter()
    root = Path(root)
    info = read_info(root)
    try:
        lock = take_lock(root)
    except UsageError:
        raise ConfigError(f"{root}: a recorder holds the dataset ({layout.LOCK_PATH}); run "
                          "`shmpipe stats` once it is closed") from None  # fmt: skip
    with lock:
        finish_pack(root)
        problems = [p.line() for p in check_dataset(root).problems if p.file != layout.STATS_PATH]
        if problems:
            raise NotWholeError(f"{root}: `shmpipe verify` finds {len(problems)} problems other "
                                "than stats (nothing was changed):\n  " + "\n  ".join(problems))
        features = Features.of(info, str(root))
        files = {path: read_parquet(path, _rel(root, path), ["episode_index"]).column(
            "episode_index").to_pylist() for path in episodes_files(root)}  # fmt: skip
        if write:
            renames = [[_rel(root, _temporary(p)), _rel(root, p)] for p in files]
            renames.append([_rel(root, _temporary(root / layout.STATS_PATH)), layout.STATS_PATH])
            journal = {"state": "writing", "renames": renames, "remove": []}
            write_journal(root, journal)
        advance = progress.phase(f"stats of {root.name}", info["total_episodes"])
        exact = _scan(root, info, features, files, write, advance)
        report = StatsReport(root, info["total_episodes"])
        report.differences = differences(_stored(root), exact)
        if write:
            text = stats_json(exact).encode()
            write_atomically(_temporary(root / layout.STATS_PATH), lambda f: f.write(text))
            write_journal(root, {**journal, "state": "swapping"})  # the commit point
            finish_pack(root)
            report.written = True
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class RestatEach:
    """restat of one dataset among many, picklable (for Ray): (report, "", False), or (None,
    why, whether it is a dataset with other problems) if it was refused."""

    write: bool = True
    progress: ProgressBar = NO_PROGRESS  # only in this process

    def __call__(self, root: Path) -> tuple[StatsReport | None, str, bool]:
        try:
            return restat(root, self.write, self.progress), "", False
        except ConfigError as error:
            return None, str(error), isinstance(error, NotWholeError)


def _scan(root: Path, info: dict, features: Features, files: dict[Path, list[int]], write: bool,
          advance: Advance) -> dict:  # fmt: skip
    """The dataset's exact stats; with `write`, each meta/episodes file is written again
    (under its temporary name) once its last episode is scanned."""
    empty = empty_stats(features)
    summary = empty
    file_of = {e: path for path, episodes in files.items() for e in episodes}
    waiting = {path: len(episodes) for path, episodes in files.items()}
    exact: dict[Path, dict[int, dict]] = {path: {} for path in files}
    for episode in scan(root, info, features):
        part, stats = episode_stats(empty, features, episode)
        summary = summary.merged(part)
        number = episode.meta["episode_index"]
        path = file_of[number]
        exact[path][number] = stats
        waiting[path] -= 1
        if waiting[path] == 0:
            if write:
                _rewrite(root, path, features.order, exact.pop(path))
            else:
                exact.pop(path)
        advance(1)
    return summary.stats()


def _rewrite(root: Path, path: Path, order: list[str], exact: dict[int, dict]) -> None:
    """The meta/episodes file `path` with every stats/ column replaced by the exact stats."""
    table = read_parquet(path, _rel(root, path))
    numbers = table.column("episode_index").to_pylist()
    new = stats_columns(order, [exact[e] for e in numbers if e in exact])
    if len(numbers) != len(exact):  # rows of episodes past total_episodes (never committed)
        table = table.filter(pa.array([e in exact for e in numbers]))
    head = [n for n in table.column_names if not n.startswith(("stats/", EPISODES_PREFIX))]
    tail = [n for n in table.column_names if n.startswith(EPISODES_PREFIX)]
    columns = {n: table.column(n) for n in head}
    columns.update(new)
    columns.update({n: table.column(n) for n in tail})
    rewritten = pa.table(columns)
    write_atomically(_temporary(path), lambda f: pq.write_table(rewritten, f))


def _stored(root: Path) -> dict:
    try:
        stored = read_json(root / layout.STATS_PATH, layout.STATS_PATH)
    except DamagedDatasetError:
        return {}
    return stored if isinstance(stored, dict) else {}


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + layout.PACKING)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
