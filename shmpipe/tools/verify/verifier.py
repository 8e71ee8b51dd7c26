"""`shmpipe verify`: is a LeRobot v3.0 dataset on disk whole, frame for frame?

Works on any v3.0 layout: episodes are found through meta/episodes (chunk/file indices, row
ranges, video time ranges), so one file per episode (shmpipe) and many episodes per file
(LeRobot's writer) read alike. Each data and video file is read once; videos on every core.
Memory stays bounded as the dataset grows: meta/episodes is kept as a few numbers per episode
(episodes.EpisodeIndex), one data file at a time, a few video files' frame times at a time.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from shmpipe.dataset import capture_times, layout
from shmpipe.dataset.adopt import ADOPTED_KEY
from shmpipe.dataset.info import is_camera
from shmpipe.dataset.reader import episodes_files
from shmpipe.dataset.untrusted import DamagedDatasetError, file_problem, parquet_rows, read_json
from shmpipe.tools.progress import NO_PROGRESS, ProgressBar
from shmpipe.tools.verify import reading
from shmpipe.tools.verify import rows as verify_rows
from shmpipe.tools.verify import stats as verify_stats
from shmpipe.tools.verify import video as verify_video
from shmpipe.tools.verify.episodes import EpisodeIndex, read_index
from shmpipe.tools.verify.images import histogram_problems
from shmpipe.tools.verify.reading import NotADatasetError as NotADatasetError
from shmpipe.tools.verify.report import Problem as Problem
from shmpipe.tools.verify.report import VerifyReport as VerifyReport

INFO, STATS, TASKS = layout.INFO_PATH, layout.STATS_PATH, layout.TASKS_PATH
EPISODES_DIR = layout.EPISODES_DIR
NOT_NUMERIC = ("video", "image", "string")
LIVE_RETRIES_S = (0.1, 0.3, 0.6)  # waits before checking a dataset being recorded again


def verify_dataset(root: str | Path, decode: bool = False,
                   progress: ProgressBar = NO_PROGRESS) -> VerifyReport:  # fmt: skip
    """Check the LeRobot v3.0 dataset at `root`; raises NotADatasetError if it is none.

    `decode=True` decodes every video frame rather than counting packets (slower). A dataset
    a recorder holds is checked again while it is mid-commit; if it never holds still, the one
    problem reported says that it is being recorded."""
    started = time.perf_counter()
    report = check_dataset(root, decode, progress)
    for wait in LIVE_RETRIES_S:
        if report.ok or reading.live_problem(report.root, 1, "") is None:
            break
        time.sleep(wait)
        report = check_dataset(root, decode)
    if not report.ok:
        live = reading.live_problem(report.root, 1 + len(LIVE_RETRIES_S), report.problems[0].line())
        report.problems = [Problem(live)] if live else report.problems
    report.seconds = time.perf_counter() - started
    return report


def check_dataset(root: str | Path, decode: bool = False,
                  progress: ProgressBar = NO_PROGRESS) -> VerifyReport:  # fmt: skip
    """One pass of verify_dataset over the files as they are now (what pack runs, holding the
    writer lock itself); progress: a bar of episodes' rows, then one of video files."""
    started = time.perf_counter()
    root = Path(root)
    info = reading.read_info(root)
    blocking = reading.blocking_problems(root, info)
    if blocking:
        return VerifyReport(root, problems=[Problem(m, file=f) for f, m in blocking])
    check = _Check(root, info, progress)
    if len(check.episodes) or check.info.get("total_episodes") != 0:  # else: created, nothing saved
        check.totals()
        check.rows()
        check.videos(decode)
        check.stats()
    report = check.report
    report.seconds = time.perf_counter() - started
    return report


class _Check:
    """One verification run: the dataset's metadata, the data files read so far, the report."""

    def __init__(self, root: Path, info: dict, progress: ProgressBar) -> None:
        self.root, self.progress = root, progress
        self.info = info
        self.fps = float(self.info["fps"])
        features = self.info["features"]
        self.cameras = [n for n, f in features.items() if is_camera(f)]
        self.report = VerifyReport(root, cameras=len(self.cameras))
        self.merge = verify_stats.EpisodeStatsMerge()
        self.episodes = self._read_episodes()
        self.report.episodes = len(self.episodes)
        self.report.frames = self.episodes.frames()
        self.files = verify_rows.DataFiles(root)  # one data file in memory at a time
        self.row_stats = verify_stats.RowStats(None)
        self.rows_whole = False  # every episode's rows were read and found right

    def problem(self, message: str, episode=None, camera=None, file=None) -> None:
        self.report.problems.append(Problem(message, episode, camera, file))

    def _read_episodes(self) -> EpisodeIndex:
        if not episodes_files(self.root) and self.info.get("total_episodes") != 0:
            self.problem(f"no {layout.EPISODES_GLOB}", file=EPISODES_DIR)
        index = read_index(self.root, self.cameras, self.merge, self.problem)
        numbers = index.columns.get("episode_index")
        if numbers is not None and not np.array_equal(numbers, np.arange(len(index))):
            self.problem(f"episode indices are not 0..{len(index) - 1}", file=EPISODES_DIR)
        return index

    def _unlisted(self, glob: str, listed: dict) -> None:
        """Files a reader globbing `glob` reads that no episode of meta/episodes lists (an
        uncommitted episode's, left visible)."""
        for path in sorted(self.root.glob(glob)):
            if self._name(path) not in listed:
                self.problem(f"no episode in meta/episodes lists it, yet a reader globbing "
                             f"{glob} reads it", file=self._name(path))  # fmt: skip

    def _name(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def totals(self) -> None:
        """info.json's totals against meta/episodes, the data files and meta/tasks.parquet."""
        tasks = self.root / TASKS
        try:
            task_count = parquet_rows(tasks, TASKS)
        except DamagedDatasetError as error:
            self.problem(str(error))
            task_count = None
        for key, found in (
            ("total_episodes", self.report.episodes),
            ("total_frames", self.report.frames),
            ("total_tasks", task_count),
        ):
            if found is not None and self.info.get(key) != found:
                self.problem(f"{key} is {self.info.get(key)}, found {found}", file=INFO)

    def rows(self) -> None:
        """Each episode's data rows: one block, frame_index 0..n-1, timestamps i/fps, and the
        global index contiguous across episodes; no rows of unlisted episodes."""
        problems_before = len(self.report.problems)
        self.row_stats = verify_stats.RowStats(self._claimed_stats())
        next_index = 0
        advance = self.progress.phase("checking rows", len(self.episodes))
        self.listed: dict[str, list[int]] = {}  # data file -> its episodes
        for i in range(len(self.episodes)):
            e = self.episodes.row(i)
            self.listed.setdefault(self._data_file(e), []).append(e["episode_index"])
        self._unlisted(layout.READERS_DATA_GLOB, self.listed)
        for i in range(len(self.episodes)):
            e = self.episodes.row(i)
            ep, length = e["episode_index"], e["length"]
            start, end = e["dataset_from_index"], e["dataset_to_index"]
            file = self._data_file(e)
            if start != next_index or end - start != length:
                self.problem(
                    f"rows [{start}, {end}) in meta/episodes, expected "
                    f"[{next_index}, {next_index + length}) for length {length}",
                    ep,
                    file=file,
                )
            next_index = end
            table = self._table(file, ep)
            if table is not None:
                for message in verify_rows.episode_problems(table, ep, length, start, self.fps):
                    self.problem(message, ep, file=file)
            advance(1)
        self.rows_whole = len(self.report.problems) == problems_before

    def _data_file(self, episode: dict) -> str:
        return self.info["data_path"].format(
            chunk_index=episode["data/chunk_index"], file_index=episode["data/file_index"]
        )

    def _claimed_stats(self) -> dict | None:
        try:
            claimed = read_json(self.root / STATS, STATS)
        except DamagedDatasetError:
            return None  # stats() reports it
        return claimed if isinstance(claimed, dict) else None

    def _table(self, file: str, episode: int) -> pa.Table | None:
        """The data file, read once (again only if episodes go back to it): its unlisted rows
        and numeric values are counted when it is first read, and only it is kept."""
        table, error, first = self.files.read(file)
        if error and first:
            self.problem(error, episode, file=file)
        if table is not None and first:
            unlisted = verify_rows.unlisted_rows(table, self.listed[file])
            if unlisted:
                self.problem(f"{unlisted} rows of episodes not in meta/episodes", file=file)
            for name in self._numeric_names():
                if name in table.column_names:
                    self.row_stats.add(name, verify_rows.matrix(table.column(name)))
                    stored = table.schema.field(name).type
                    wrong = verify_rows.layout_problem(self.info["features"][name], stored)
                    if wrong:
                        self.problem(f"column {name!r} {wrong}", file=file)
        return table

    def videos(self, decode: bool) -> None:
        """Each camera's frames of each episode: the count and the time of every frame. Video
        files are read a few at a time (on every core) and dropped once their episodes are
        checked."""
        wanted = self.episodes.video_files(self.cameras, self.info["video_path"], self.problem)
        for camera in self.cameras:
            self._unlisted(layout.READERS_VIDEO_GLOB.format(video_key=camera), wanted)
        problems = {f: file_problem(self.root / f) for f in wanted}
        present = sorted(f for f, problem in problems.items() if problem is None)
        for file, problem in problems.items():
            for i, camera in wanted[file] if problem is not None else ():
                self.problem("video file missing" if problem == "missing" else problem,
                             self.episodes.row(i)["episode_index"], camera, file)  # fmt: skip
        read = verify_video.read_each([self.root / f for f in present], decode)
        advance = self.progress.phase("checking videos", len(present))
        for file, video in zip(present, read, strict=True):
            self.report.video_frames += len(video.times)
            held = [(self.episodes.row(i), camera) for i, camera in wanted[file]]
            for message, episode, camera in verify_video.file_problems(video, held, self.fps):
                self.problem(message, episode, camera, file)
            advance(1)

    def stats(self) -> None:
        """stats.json against the merged per-episode stats; for shmpipe's datasets, exactly
        against numpy over every row of the numeric features."""
        try:
            dataset_stats = read_json(self.root / STATS, STATS)
        except DamagedDatasetError as error:
            self.problem(str(error))
            return
        if not isinstance(dataset_stats, dict):
            self.problem("expected a JSON object of feature -> stats", file=STATS)
            return
        adopted = isinstance(self.info.get("shmpipe"), dict) and self.info["shmpipe"].get(
            ADOPTED_KEY
        )  # its first episodes' image stats in meta/episodes are another writer's
        if adopted == self.info.get("total_episodes") and not self.merge.problems(dataset_stats):
            return  # adopted, nothing recorded since, stats.json still its writer's: whole
        # another writer's per-episode stats merge only roughly (LeRobot's numeric std is off
        # by ~1e-5): for adopted datasets the histograms and the rows are the exact checks
        exact_elsewhere = [*self.cameras, *(self._numeric_names() if self.rows_whole else ())]
        found = self.merge.problems(dataset_stats, skip=exact_elsewhere if adopted else ())
        if adopted:
            found += histogram_problems(self.root, len(self.episodes), self.cameras, dataset_stats)
        if "shmpipe" in self.info and self.rows_whole:  # else the rows are not the dataset's
            found += self.row_stats.problems(dataset_stats)
        for feature, message in found:
            camera = feature if feature in self.cameras else None
            self.problem(f"{feature} {message}", camera=camera, file=STATS)

    def _numeric_names(self) -> list[str]:
        skip = capture_times.columns_of(self.info)  # no stats: seconds of a clock
        return [n for n, f in self.info["features"].items()
                if f.get("dtype") not in NOT_NUMERIC and n not in skip]  # fmt: skip
