"""One episode's commit as a line of steps, each allowed only from the state the last one left:

    NEW --write_data--> DATA_STAGED --write_meta--> META_STAGED --publish--> PUBLISHED

so that a recorder writes what is final while its encoders still flush: the data file once the
rows are final, the stats and metadata files (info.json included) once the image histograms are
in; `sync_early` (any number of times, once the data is staged) pushes the videos' bytes out
meanwhile. Every file is written under its staged name (layout.staged), which no reader's glob
matches. `publish`, once the videos are in place, makes them durable and then renames every
staged file into place in one burst of renames with info.json last: readers see the episode
appear at once, and a crash before the burst leaves no trace a reader sees (the next open
removes the staged files; one after info.json's rename finishes the renames).
A step out of order raises UsageError naming both states; a step that fails leaves FAILED and,
unless publish had begun to rename, removes what was staged.
"""

from __future__ import annotations

import contextlib
import enum
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from shmpipe.dataset import capture_times, layout
from shmpipe.dataset.checks import check_histograms, check_videos
from shmpipe.dataset.files import rename_together, sync_durably, sync_folders, write_unpublished
from shmpipe.dataset.info import stage_info, with_episode
from shmpipe.dataset.meta_tables import TaskList, episodes_row
from shmpipe.dataset.rows import EpisodeRows, rows_table
from shmpipe.dataset.state import stage_state
from shmpipe.dataset.stats import DatasetStats, stats_json
from shmpipe.errors import UsageError
from shmpipe.video.segments import segment_paths


class CommitState(enum.Enum):
    NEW = "new"
    DATA_STAGED = "data staged"
    META_STAGED = "metadata staged"
    PUBLISHED = "published"
    FAILED = "failed"  # a step raised: DatasetWriter.discard_episode removes what was staged


class EpisodeCommit:
    """The files of one episode, staged step by step and published at once. Made by
    DatasetWriter.begin_commit (or stage_episode, which also takes the first step); the
    writer's commit_staged publishes it and moves the dataset on. `timings` (seconds): "data",
    "stats", "meta" (every metadata file and sync, publishing included) and "commit" (of
    "meta", the part that waits for the videos: their sync and the renames)."""

    def __init__(self, root: Path, info: dict, cameras: Mapping[str, tuple[int, int, int]],
                 stats: DatasetStats, tasks: TaskList, rows: EpisodeRows, episode_index: int,
                 first_frame: int, linked: set[Path]) -> None:  # fmt: skip
        self.root, self.episode_index, self.first_frame = root, episode_index, first_frame
        self.length = rows.num_frames
        self._cameras, self.cameras = cameras, list(cameras)
        self._info, self._stats, self._tasks, self._linked = info, stats, tasks, linked
        self._texts = tasks.texts()
        self._columns = rows.columns(info["fps"], episode_index, first_frame)
        self._capture_columns = capture_times.columns_of(info)
        self._features = rows.features
        self.tasks = [self._texts[i] for i in dict.fromkeys(self._columns["task_index"].tolist())]
        self.data_path = layout.data_path(root, episode_index)
        self.videos = {c: layout.video_path(root, c, episode_index) for c in self.cameras}
        self.timings = {"data": 0.0, "stats": 0.0, "meta": 0.0, "commit": 0.0}
        self.state = CommitState.NEW
        self.stats: dict | None = None  # the episode's, once write_meta has run
        self.merged: DatasetStats | None = None  # the dataset's with this episode
        self.info: dict | None = None  # info.json with this episode, once write_meta has run
        self.renaming = False  # publish has begun to rename: stats.json may count the episode
        self.started = time.perf_counter()
        # (staged, final) in the order of publish: files that replace one (slow renames: the
        # old file is freed) and ours under meta/shmpipe, then the new files readers glob; the
        # videos and info.json come last
        self._replacing: list[tuple[Path, Path]] = []
        self._new: list[tuple[Path, Path]] = []
        self._info_file = layout.staged(root / layout.INFO_PATH)  # written by write_meta

    @contextlib.contextmanager
    def _step(self, step: str, expected: CommitState, to: CommitState) -> Iterator[None]:
        """Run a step that starts from `expected` and ends in `to`; FAILED if it raises."""
        if self.state is not expected:
            raise UsageError(f"episode {self.episode_index} commit: {step} needs the state "
                             f"{expected.value!r}, the commit is {self.state.value!r}")  # fmt: skip
        self.state = to
        try:
            yield
        except BaseException:
            self.state = CommitState.FAILED
            if not self.renaming:  # nothing is in place yet: what was staged goes
                for staged, _ in [*self._replacing, *self._new, (self._info_file, None)]:
                    staged.unlink(missing_ok=True)
            raise

    def write_data(self) -> None:
        """The data file, staged and synced."""
        with self._step("write_data", CommitState.NEW, CommitState.DATA_STAGED):
            started = time.perf_counter()
            table = rows_table(self._columns, self._features, self._capture_columns)
            self._stage(self.data_path, lambda f: pq.write_table(table, f))
            self.timings["data"] = time.perf_counter() - started

    def write_meta(self, image_histograms: Mapping[str, np.ndarray]) -> None:
        """The episode's stats (rows and `image_histograms`, camera -> pixel counts) and the
        merged dataset stats, then every metadata file staged: the histograms, the
        meta/episodes row, tasks.parquet (if a task is new), stats.json, state.npz and
        info.json, durable with the data file (files and folders synced) before return."""
        check_histograms(self._cameras, image_histograms, self.length)
        with self._step("write_meta", CommitState.DATA_STAGED, CommitState.META_STAGED):
            self._write_meta(image_histograms)

    def _write_meta(self, image_histograms: Mapping[str, np.ndarray]) -> None:
        started = time.perf_counter()
        episode = self._stats.episode_stats(self._columns, image_histograms)
        self.stats = episode.stats()
        self.merged = self._stats.merged(episode)
        dataset_stats = stats_json(self.merged.stats()).encode()
        computed = time.perf_counter()
        index = self.episode_index
        row = episodes_row(index, self.first_frame, self.length, self._info["fps"], self.tasks,
                           self.cameras, self.stats)  # fmt: skip
        histograms = layout.histograms_path(self.root, index)
        written = write_unpublished(histograms, lambda f: np.savez(f, **episode.histograms))
        self._replacing.append((written, histograms))  # ours: no reader looks
        self._stage(layout.episodes_path(self.root, index), lambda f: pq.write_table(row, f))
        tasks = self._tasks.stage(len(self._texts))
        if tasks is not None:
            self._replacing.append((tasks, self._tasks.path))
        stats = write_unpublished(self.root / layout.STATS_PATH, lambda f: f.write(dataset_stats))
        self._replacing.append((stats, self.root / layout.STATS_PATH))
        info = with_episode(self._info, index, self.first_frame + self.length, len(self._texts))
        state = stage_state(self.root, info, self.merged.to_arrays())
        self._replacing.insert(0, (state, self.root / layout.STATE_PATH))
        self._info_file = stage_info(self.root, info)
        written = [staged for staged, _ in self._replacing + self._new] + [self._info_file]
        sync_folders(written, self.root, self._linked)
        self.info = info
        self.timings["stats"] = computed - started
        self.timings["meta"] += time.perf_counter() - computed

    def sync_early(self) -> None:
        """Push the bytes of the videos written so far to the disk (an encoder's segments, or
        its finished file), so that publish's sync waits only for their tails. Best effort: a
        segment renamed meanwhile is skipped, and publish syncs every video whatever happened."""
        if self.state not in (CommitState.DATA_STAGED, CommitState.META_STAGED):  # no change
            raise UsageError(f"episode {self.episode_index} commit: sync_early needs the data "
                             f"staged, the commit is {self.state.value!r}")  # fmt: skip
        started = time.perf_counter()
        for video in self.videos.values():
            staged = layout.staged(video)
            for path in [staged, *(p for _, p in segment_paths(staged))]:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.fsync(fd)
                except OSError:
                    pass
                finally:
                    os.close(fd)
        self.timings["meta"] += time.perf_counter() - started

    def publish(self) -> None:
        """Once every video is in place under its staged name (or, written by a caller of
        commit_episode, under its final name): the videos and their folders durable, then
        every staged file renamed into place, info.json last (the commit point), then the
        renames made durable. Until info.json's rename nothing counts the episode."""
        with self._step("publish", CommitState.META_STAGED, CommitState.PUBLISHED):
            started = time.perf_counter()
            videos = [(layout.staged(v), v) for v in self.videos.values()]
            staged = [(s, v) for s, v in videos if s.is_file()]
            if len(staged) < len(videos):  # a caller of commit_episode put them in place
                check_videos(self.root, self._cameras, self.episode_index)
            paths = [s for s, _ in staged] + [v for s, v in videos if (s, v) not in staged]
            sync_durably(paths, paths, self.root, self._linked)
            info = (self._info_file, self.root / layout.INFO_PATH)
            renames = [*self._replacing, *self._new, *staged, info]
            self.renaming = True
            rename_together(renames)
            self._tasks.published(len(self._texts))
            sync_folders([final for _, final in renames], self.root, self._linked)
            self.timings["commit"] = time.perf_counter() - started
            self.timings["meta"] += self.timings["commit"]

    def _stage(self, path: Path, write) -> None:
        self._new.append((write_unpublished(path, write), path))
