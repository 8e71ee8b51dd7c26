"""A LeRobot v3.0 dataset on disk that grows one committed episode at a time.

Each episode has files of its own (data, one video per camera, a meta/episodes row, its image
histograms), so saving costs O(that episode). They are staged under names no reader globs and
published together, `meta/info.json` last: the commit point (shmpipe.dataset.episode_commit).
Files it does not count are not part of the dataset, and reopening removes them; the metadata
files a commit replaces before it are put back (shmpipe.dataset.committed_meta).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from shmpipe.dataset import adopt, capture_times, layout
from shmpipe.dataset.checks import check_episode, check_rows
from shmpipe.dataset.cleanup import remove_new_dataset, remove_shmpipe_dir, remove_unfinished
from shmpipe.dataset.committed_meta import CommittedMeta
from shmpipe.dataset.episode_commit import EpisodeCommit
from shmpipe.dataset.feature_types import specs_of
from shmpipe.dataset.files import take_lock
from shmpipe.dataset.info import check_fps, check_names, new_info, shapes, write_info
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.dataset.settings_match import matching_info
from shmpipe.errors import ConfigError, UsageError
from shmpipe.stats.columns import Stats

__all__ = ["CommittedEpisode", "DatasetWriter", "check_names", "remove_unfinished"]
log = logging.getLogger("shmpipe")


@dataclass(frozen=True)
class CommittedEpisode:
    """What commit_episode (or commit_staged) wrote. timings, in seconds, each measured on its
    own: "data" building and writing the data parquet, "stats" the episode's and the dataset's
    stats, "meta" writing the histograms, the meta/episodes row, tasks.parquet (if a task is
    new), stats.json, state.npz and info.json with every sync, "commit" (part of "meta") what
    waits for the videos: their sync and info.json, "total" from the checks (commit_episode)
    or stage_episode to the commit."""

    episode_index: int
    length: int
    tasks: list[str]
    stats: dict[str, Stats]
    data_path: str
    timings: dict[str, float]
    videos: dict[str, Path]  # camera -> its video of the episode

    @classmethod
    def of(cls, staged: EpisodeCommit, started: float | None = None) -> CommittedEpisode:
        """What the published `staged` commit wrote; "total" from `started` (or its start)."""
        timings = dict(staged.timings)
        timings["total"] = time.perf_counter() - (staged.started if started is None else started)
        return cls(staged.episode_index, staged.length, staged.tasks, staged.stats,
                   str(staged.data_path), timings, staged.videos)  # fmt: skip


class DatasetWriter(contextlib.AbstractContextManager):
    """Appends episodes to the LeRobot v3.0 dataset at `root`; one writer per root at a time.

    The caller puts an episode's videos at layout.staged_video_path (file number = episode
    index; layout.video_path works too, but readers see the file early) and calls
    commit_episode with its rows and image histograms: it writes the data file and the
    metadata, and makes the episode part of the dataset. A recorder can instead write what does
    not depend on the videos while they are still being encoded: stage_episode (the data file),
    EpisodeCommit.write_meta, then commit_staged. discard_episode deletes an episode instead.
    Use `open`, not the constructor; `close` releases the dataset.
    """

    def __init__(self, root: Path, info: dict, lock: IO[bytes]) -> None:
        self.root = root
        self._info = info
        self._lock = lock
        self.fps: int = info["fps"]
        self.cameras, self.features = shapes(info)
        self.capture_cameras = capture_times.cameras_of(info)  # cameras with capture times
        self.next_episode_index: int = info["total_episodes"]
        self.next_frame_index: int = info["total_frames"]
        self._staged: EpisodeCommit | None = None  # the episode being committed, if any
        self._linked: set[Path] = set()  # folders known durable in their parents (files.py)
        self._meta = CommittedMeta(root, info, self.features, self.cameras, self._linked)
        self.created, self._root_existed = False, True  # whether open() made the dataset

    @classmethod
    def open(
        cls,
        root: str | os.PathLike,
        fps: int,
        cameras: Mapping[str, tuple[int, int, int]],
        features: Mapping[str, tuple],
        video: Mapping[str, object],
        robot_type: str | None = None,
        feature_names: Mapping[str, Sequence[str]] | None = None,
        capture: bool = False,
    ) -> DatasetWriter:
        """Create a dataset at `root` (absent or empty) or resume the one there.

        `video` is the encoder's settings (VideoEncoderConfig.as_dict()); feature_names maps a
        feature to one name per dimension (info.json's "names"). Resuming checks that fps,
        cameras, features, video settings and, if given, robot_type and feature_names match
        (ConfigError naming each difference). Only once it holds the writer lock does it
        change anything: it removes unfinished files (remove_unfinished) and reloads what exact
        stats need. A refused open changes nothing on disk.
        """
        root = Path(root).absolute()  # resolved once: the caller may chdir later
        fps = check_fps(fps)
        features = specs_of(features)  # (n,) means float32
        check_names(cameras, features, feature_names, capture)
        wanted = new_info(fps, cameras, features, video, robot_type, feature_names, capture)
        checks = (root, wanted, robot_type is not None, feature_names is not None)
        matching_info(*checks)  # refuse before the lock, which is a file in root
        root_existed = root.exists()
        ours_before = (root / layout.SHMPIPE_DIR).exists()
        lock = take_lock(root)
        creating = False
        try:
            found = matching_info(*checks)  # again: another writer may have been quicker
            creating = found is None
            foreign = found is not None and adopt.is_foreign(found)  # LeRobot's: one scan
            writer = cls(root, adopt.adopted(found, wanted) if foreign else found or wanted, lock)
            writer.created, writer._root_existed = found is None, root_existed
            if found is None:
                write_info(root, wanted, writer._linked)
            else:
                remove_unfinished(root, writer.next_episode_index, opening=True)
                writer._meta.reload(writer._info, writer.next_episode_index,
                                    writer.next_frame_index)  # fmt: skip
            if foreign:  # adopted once its scan succeeded, before our stats.json replaces
                write_info(root, writer._info, writer._linked)  # LeRobot's (verify: either)
            if found is not None:
                writer._restore_meta()
            return writer
        except BaseException:
            lock.close()
            if creating:  # its info.json may be half made (a thread or a write refused)
                remove_new_dataset(root, keep_root=root_existed)
            elif not ours_before:  # a dataset that could not be adopted is left as it was
                remove_shmpipe_dir(root)
            raise

    # -- recording -------------------------------------------------------------------------
    def new_rows(self) -> EpisodeRows:
        """Empty rows for an episode, laid out as this dataset's data files."""
        return EpisodeRows(self.features, fps=self.fps, capture=self.capture_cameras)

    def task_index(self, task: str) -> int:
        """The index of `task`; a new task gets the next one (saved at the next commit)."""
        return self._meta.tasks.index(task)

    def commit_episode(
        self,
        episode_index: int,
        rows: EpisodeRows,
        image_histograms: Mapping[str, np.ndarray],
    ) -> CommittedEpisode:
        """Write episode `episode_index`'s data file and metadata; its videos must be in place.

        rows: the episode's numeric rows, task indices from task_index(). image_histograms:
        camera -> (3, 256) int64 counts of the episode's downsampled pixels. Writes the data
        parquet, the histograms, the meta/episodes row, tasks.parquet (if a task is new),
        meta/stats.json, then meta/info.json. If anything fails (DatasetError naming the file
        on a full disk), nothing is committed and the episode can be committed again.
        """
        t0 = time.perf_counter()
        _check_next(self.next_episode_index, episode_index)
        check_episode(self.root, self.cameras, self.features, len(self._meta.tasks.texts()),
                      episode_index, rows, image_histograms)  # fmt: skip
        staged = self.stage_episode(episode_index, rows)
        staged.write_meta(image_histograms)
        return self.commit_staged(staged, started=t0)

    def begin_commit(self, episode_index: int, rows: EpisodeRows) -> EpisodeCommit:
        """The commit of episode `episode_index`, checked and not begun (CommitState.NEW): the
        caller takes its steps (write_data, write_meta, sync_early) while the videos are being
        encoded, then commit_staged once they are in place; `rows` must not change meanwhile.
        Until commit_staged returns the episode is not part of the dataset (discard_episode
        removes what was written)."""
        _check_next(self.next_episode_index, episode_index)
        check_rows(self.features, len(self._meta.tasks.texts()), rows, self.capture_cameras)
        self._meta.dropped(self._staged)
        self._staged = EpisodeCommit(self.root, self._info, self.cameras, self._meta.stats,
                                     self._meta.tasks, rows, episode_index,
                                     self.next_frame_index, self._linked)  # fmt: skip
        return self._staged

    def stage_episode(self, episode_index: int, rows: EpisodeRows) -> EpisodeCommit:
        """begin_commit, then its first step: the data file written (staged)."""
        staged = self.begin_commit(episode_index, rows)
        staged.write_data()
        return staged

    def commit_staged(self, staged: EpisodeCommit, started: float | None = None
                      ) -> CommittedEpisode:  # fmt: skip
        """Make the staged episode part of the dataset: its videos (now in place) and
        folders durable, then meta/info.json. Raises like commit_episode."""
        _check_next(self.next_episode_index, staged.episode_index)
        if staged is not self._staged:
            raise UsageError(f"commit_staged: episode {staged.episode_index}'s commit is not "
                             "the one this writer staged last")  # fmt: skip
        staged.publish()
        # Committed: only now does the writer's state move on.
        self._info, self._staged = staged.info, None
        self._meta.committed(staged.merged)
        self.next_episode_index = staged.episode_index + 1
        self.next_frame_index += staged.length
        return CommittedEpisode.of(staged, started)

    def discard_episode(self, episode_index: int) -> None:
        """Delete the files of an episode that will not be committed (cancelled, or its commit
        failed): data, videos with unfinished segments, temporaries, and what commit_episode
        wrote. Tasks first seen since the last commit are forgotten; add_frame registers them
        again. tasks.parquet and stats.json written by a failed commit are put back."""
        if episode_index < self.next_episode_index:
            raise ConfigError(f"discard_episode: episode {episode_index} is committed")
        remove_unfinished(self.root, self.next_episode_index)
        self._meta.tasks.forget_uncommitted()
        self._restore_meta()

    def discard_files(self, numbers: Sequence[int]) -> None:
        """Delete the files numbered `numbers` (episodes not committed: a commit that failed
        while later episodes are recorded or encoded, whose files stay) and metadata a failed
        commit left staged or replaced. Tasks stay known: a later episode may use them."""
        if min(numbers) < self.next_episode_index:
            raise ConfigError(f"discard_files: episode {min(numbers)} is committed")
        remove_unfinished(self.root, self.next_episode_index, only=numbers)
        self._restore_meta()

    def close(self, discard_new: bool = False) -> None:
        """Let another writer open this dataset. Writes nothing; `discard_new` removes it if
        this open created it and nothing was recorded (a start() that failed after opening
        must leave no dataset behind: the next start may have other settings)."""
        if discard_new and self.created and self.next_episode_index == 0:
            remove_new_dataset(self.root, keep_root=self._root_existed)
        self._lock.close()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- metadata files ------------------------------------------------------------------
    def _restore_meta(self) -> None:
        """Forget a staged episode; put tasks.parquet, stats.json and state.npz back to what
        info.json counts."""
        self._meta.dropped(self._staged)
        self._staged = None
        self._meta.restore(self._info, self.next_episode_index)


def _check_next(expected: int, episode_index: int) -> None:
    if episode_index != expected:
        raise ConfigError(f"commit_episode: expected episode {expected}, got {episode_index}")
