"""`merge`: N LeRobot v3.0 datasets (shmpipe's or LeRobot's) into one, with exact stats.

Episodes are renumbered in source order, tasks remapped to one table, data rows rewritten with
their new episode_index / index / task_index, videos copied byte for byte (never re-encoded).
Stats are exact: each source's episodes are scanned once (shmpipe's saved image histograms,
else the decoded frames; numpy over the rows) into mergeable summaries, merged in source order,
so LeRobot's averaged quantiles (lerobot#4156) and stale index stats (#3788) do not arise.

Crash safety: everything is written into a hidden sibling folder `.OUT.merging` and renamed to
OUT at the end (one rename: OUT is absent or whole). Each source marks itself done there
(meta/shmpipe/merge/source-NNN.npz, its stats summary); a merge interrupted and run again with
the same sources says so and copies only the sources not yet done; with other sources it
removes the old folder and starts over. Memory: one source file of each kind at a time (see
shmpipe.dataset.scan), and a stats summary per source.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from shmpipe.dataset import layout
from shmpipe.dataset.exact_stats import empty_stats
from shmpipe.dataset.files import sync_folders, write_atomically
from shmpipe.dataset.meta_tables import tasks_table
from shmpipe.dataset.state import digest, info_text
from shmpipe.dataset.stats import stats_json
from shmpipe.errors import ConfigError
from shmpipe.tools.fanout import Fanout
from shmpipe.tools.merge.plan import MergePlan, plan_merge
from shmpipe.tools.merge.source import MERGE_DIR, copy_source, done_path
from shmpipe.tools.progress import NO_PROGRESS, ProgressBar
from shmpipe.tools.verify.verifier import check_dataset

MARKER = MERGE_DIR + "/merge.json"


class NotMergeableError(ConfigError):
    """A source is not whole (as `shmpipe verify` finds it); nothing was written."""


@dataclass(frozen=True)
class MergeReport:
    out: Path
    sources: int
    episodes: int
    frames: int
    tasks: int
    resumed: int  # sources an interrupted merge had copied already
    seconds: float

    def line(self) -> str:
        again = f" (resumed: {self.resumed} sources were copied before)" if self.resumed else ""
        return (f"merged {self.sources} datasets into {self.out}: {self.episodes} episodes, "
                f"{self.frames} frames, {self.tasks} tasks in {self.seconds:.2f} s"
                + again)  # fmt: skip


def merge(out, sources, fanout: Fanout | None = None, progress: ProgressBar = NO_PROGRESS,
          announce=print) -> MergeReport:  # fmt: skip
    """Merge the datasets `sources` into the new dataset `out` (absent or an empty folder).
    ConfigError, one line naming the dataset and feature, if they cannot be merged; nothing
    is written then. progress: bars of sources checked and episodes copied; announce(line):
    what a resume found."""
    started = time.perf_counter()
    fanout = fanout or Fanout()
    out, roots = Path(out), [Path(s) for s in sources]
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not empty; merge writes a new dataset")
    plan = plan_merge(roots)
    if plan.episodes == 0:
        raise ConfigError("merge: the sources hold no episodes")
    staging = out.with_name(f".{out.name}.merging")
    resumed = _prepare(staging, roots, announce)
    todo = [s for s in plan.sources if not done_path(staging, s.number).is_file()]
    checked = progress.phase("checking sources", len(todo))
    for problems in fanout.map(_source_problems, [s.root for s in todo], checked):
        if problems:
            raise NotMergeableError(problems)
    copied = progress.phase("copying episodes", plan.episodes)
    copied(sum(s.episodes for s in plan.sources if s not in todo))
    fanout.map(_Copy(staging, plan), todo, copied, [s.episodes for s in todo])
    _finish(staging, plan)
    if out.exists():
        out.rmdir()
    os.replace(staging, out)  # the commit point
    sync_folders([out], out.parent)
    shutil.rmtree(out / MERGE_DIR)  # the sources' marks: a crash here leaves them, harmless
    return MergeReport(out, len(roots), plan.episodes, plan.info["total_frames"],
                       len(plan.tasks), len(plan.sources) - len(todo) if resumed else 0,
                       time.perf_counter() - started)  # fmt: skip


class _Copy:
    """copy_source of one source, picklable (for Ray)."""

    def __init__(self, staging: Path, plan: MergePlan) -> None:
        self.staging, self.plan = staging, plan

    def __call__(self, source) -> None:
        copy_source(self.staging, self.plan, source)


def _source_problems(root: Path) -> str:
    """verify's problems of a source (but stats.json's: merge computes the stats again)."""
    report = check_dataset(root)
    lines = [p.line() for p in report.problems if p.file != layout.STATS_PATH]
    if not lines:
        return ""
    return (f"{root}: not merged: `shmpipe verify` finds {len(lines)} problems (nothing was "
            "written):\n  " + "\n  ".join(lines[:20]))  # fmt: skip


def _prepare(staging: Path, roots: list[Path], announce) -> bool:
    """The merge folder, new or left by an interrupted merge of the same sources as they are
    now (True): the same folders, and each info.json the same text (same episodes, frames)."""
    marker = {"sources": [str(r.resolve()) for r in roots],
              "info": [digest((r / layout.INFO_PATH).read_bytes()) for r in roots]}  # fmt: skip
    if staging.exists():
        try:
            found = json.loads((staging / MARKER).read_text())
        except (OSError, ValueError):
            found = None
            if any(not p.name.endswith(layout.STAGED) for p in staging.rglob("*") if p.is_file()):
                raise ConfigError(f"{staging} exists but is not a merge's folder; remove "
                                  "it") from None  # fmt: skip
        if found == marker:
            done = len(list((staging / MERGE_DIR).glob("source-*.npz")))
            announce(f"resuming an interrupted merge in {staging}: {done} of {len(roots)} "
                     "sources were copied")  # fmt: skip
            for partial in staging.rglob("*" + layout.STAGED):
                partial.unlink()
            return True
        announce(f"removing {staging}, left by an interrupted merge of other sources (or of "
                 "these before they changed); merging again")  # fmt: skip
        shutil.rmtree(staging)
    text = json.dumps(marker).encode()
    write_atomically(staging / MARKER, lambda f: f.write(text))
    return False


def _finish(staging: Path, plan: MergePlan) -> None:
    """The sources' stats summaries merged in order; stats.json, tasks.parquet and info.json
    (last); the merge's own files removed; every folder synced."""
    empty = empty_stats(plan.features)
    merged = empty
    for source in plan.sources:
        with np.load(done_path(staging, source.number)) as saved:
            merged = merged.merged(empty.from_arrays(saved))
    text = stats_json(merged.stats()).encode()
    write_atomically(staging / layout.STATS_PATH, lambda f: f.write(text))
    tasks = tasks_table(plan.tasks)
    write_atomically(staging / layout.TASKS_PATH, lambda f: pq.write_table(tasks, f))
    info = info_text(plan.info).encode()
    write_atomically(staging / layout.INFO_PATH, lambda f: f.write(info))
    sync_folders([p for p in staging.rglob("*") if p.is_file()], staging)
