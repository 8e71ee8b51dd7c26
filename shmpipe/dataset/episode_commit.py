"""One episode's commit in steps, so that the recorder writes what is final while its encoders
still flush: the data file once the rows are final, the stats and metadata files (and info.json
under its temporary name) once the image histograms are in; only once the videos are in place
their sync, then info.json renamed into place: the commit point. Until then nothing counts the
episode: a crash leaves it absent (reopening removes its files), and
DatasetWriter.discard_episode removes what was written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from shmpipe.dataset import layout
from shmpipe.dataset.checks import check_histograms, check_videos
from shmpipe.dataset.files import (
    sync_durably,
    sync_folders,
    write_atomically,
    write_unpublished,
)
from shmpipe.dataset.meta_tables import TaskList, episodes_row
from shmpipe.dataset.rows import EpisodeRows, rows_table
from shmpipe.dataset.state import info_text, save_state
from shmpipe.dataset.stats import DatasetStats, stats_json
from shmpipe.video.segments import segment_paths


class EpisodeCommit:
    """The files of one episode written so far. Made by DatasetWriter.stage_episode (which
    writes the data file); then write_meta, sync_early (optional, any number of times) and
    DatasetWriter.commit_staged, which calls commit. `timings` (seconds): "data", "stats",
    "meta" (every metadata file and sync, info.json included) and "commit" (of "meta", the part
    that waits for the videos: their sync and info.json)."""

    def __init__(self, root: Path, info: dict, cameras: Mapping[str, tuple[int, int, int]],
                 stats: DatasetStats, tasks: TaskList, rows: EpisodeRows, episode_index: int,
                 first_frame: int, linked: set[Path]) -> None:  # fmt: skip
        self.root, self.episode_index, self.first_frame = root, episode_index, first_frame
        self.length = rows.num_frames
        self._cameras, self.cameras = cameras, list(cameras)
        self._info, self._stats, self._tasks, self._linked = info, stats, tasks, linked
        self._texts = tasks.texts()
        self._columns = rows.columns(info["fps"], episode_index, first_frame)
        self._features = rows.features
        self.tasks = [self._texts[i] for i in dict.fromkeys(self._columns["task_index"].tolist())]
        self.data_path = layout.data_path(root, episode_index)
        self.timings = {"data": 0.0, "stats": 0.0, "meta": 0.0, "commit": 0.0}
        self.stats: dict | None = None  # the episode's, once write_meta has run
        self.merged: DatasetStats | None = None  # the dataset's with this episode
        self.info: dict | None = None  # info.json once committed
        self.meta_begun = False  # stats.json or state.npz may count the episode
        self.started = time.perf_counter()
        self._info_file = layout.staged(root / layout.INFO_PATH)  # written by write_meta

    def write_data(self, capture_columns: list[str]) -> None:
        started = time.perf_counter()
        table = rows_table(self._columns, self._features, capture_columns)
        write_atomically(self.data_path, lambda f: pq.write_table(table, f))
        self.timings["data"] = time.perf_counter() - started

    def write_meta(self, image_histograms: Mapping[str, np.ndarray]) -> None:
        """The episode's stats (rows and `image_histograms`, camera -> pixel counts) and the
        merged dataset stats, then every metadata file: the histograms, the meta/episodes row,
        tasks.parquet (if a task is new), stats.json and state.npz, durable with the data file
        (files and folders synced) before return, and info.json under its temporary name."""
        check_histograms(self._cameras, image_histograms, self.length)
        started = time.perf_counter()
        episode = self._stats.episode_stats(self._columns, image_histograms)
        self.stats = episode.stats()
        self.merged = self._stats.merged(episode)
        dataset_stats = self.merged.stats()
        computed = time.perf_counter()
        fps, index = self._info["fps"], self.episode_index
        row = episodes_row(index, self.first_frame, self.length, fps, self.tasks, self.cameras,
                           self.stats)  # fmt: skip
        histograms = layout.histograms_path(self.root, index)
        write_atomically(histograms, lambda f: np.savez(f, **episode.histograms))
        episodes = layout.episodes_path(self.root, index)
        write_atomically(episodes, lambda f: pq.write_table(row, f))
        self._tasks.save()
        self.meta_begun = True
        write_atomically(self.root / layout.STATS_PATH, _text(stats_json(dataset_stats)))
        info = dict(self._info)
        info["total_episodes"] = index + 1
        info["total_frames"] = self.first_frame + self.length
        info["total_tasks"] = len(self._texts)
        info["splits"] = {"train": f"0:{index + 1}"}
        save_state(self.root, info, self.merged.to_arrays())
        self._info_file = write_unpublished(self.root / layout.INFO_PATH, _text(info_text(info)))
        written = [self.data_path, histograms, episodes, self.root / layout.STATE_PATH,
                   self.root / layout.STATS_PATH]  # fmt: skip
        sync_folders(written, self.root, self._linked)
        self.info = info
        self.timings["stats"] = computed - started
        self.timings["meta"] += time.perf_counter() - computed

    def sync_early(self) -> None:
        """Push the bytes of the videos written so far to the disk (an encoder's segments, or
        its finished file), so that commit's sync waits only for their tails. Best effort: a
        segment renamed meanwhile is skipped, and commit syncs every video whatever happened."""
        started = time.perf_counter()
        for camera in self.cameras:
            video = layout.video_path(self.root, camera, self.episode_index)
            for path in [video, *(p for _, p in segment_paths(video))]:
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

    def commit(self, publish_info: Callable[[Path], None]) -> None:
        """Once every video is in place: the videos and their folders durable, then
        `publish_info(the info.json written and synced by write_meta)`, which renames it into
        place, the step that makes the episode part of the dataset."""
        if self.info is None:
            raise RuntimeError("EpisodeCommit.commit: write_meta has not run")
        started = time.perf_counter()
        check_videos(self.root, self._cameras, self.episode_index)
        videos = [layout.video_path(self.root, camera, self.episode_index)
                  for camera in self.cameras]  # fmt: skip
        sync_durably(videos, videos, self.root, self._linked)
        publish_info(self._info_file)
        self.timings["commit"] = time.perf_counter() - started
        self.timings["meta"] += self.timings["commit"]


def write_info(root: Path, info: dict, linked: set[Path] | None = None) -> None:
    """meta/info.json holding `info`, durable before return."""
    path = root / layout.INFO_PATH
    write_atomically(path, _text(info_text(info)))
    sync_folders([path], root, linked)


def _text(text: str):
    return lambda f: f.write(text.encode())
