"""What commit_episode checks before it writes anything: the episode fits the dataset.

Each check raises ConfigError saying what disagrees, so a refused commit leaves the dataset as
it was and the caller can fix the episode or discard it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from shmpipe.dataset import layout
from shmpipe.dataset.feature_types import FeatureSpec, described
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.errors import ConfigError
from shmpipe.stats.images import downsample_factor, histogram_shape


def check_episode(
    root: Path,
    cameras: Mapping[str, tuple[int, ...]],
    features: Mapping[str, FeatureSpec],
    tasks: int,
    episode_index: int,
    rows: EpisodeRows,
    image_histograms: Mapping[str, np.ndarray],
) -> None:
    """Rows with the dataset's features, task indices below `tasks`, histograms counting as
    many frames as there are rows, and every camera's video of `episode_index` in place."""
    check_rows(features, tasks, rows)
    check_histograms(cameras, image_histograms, rows.num_frames)
    check_videos(root, cameras, episode_index)


def check_rows(features: Mapping[str, FeatureSpec], tasks: int, rows: EpisodeRows,
               capture: list[str] | None = None) -> None:  # fmt: skip
    """Rows with the dataset's features (names, shapes, dtypes, in order), at least one, task
    indices below `tasks` and (unless None) capture times of the cameras `capture`."""
    if list(rows.features.items()) != list(features.items()):
        raise ConfigError(f"commit_episode: rows have features {described(rows.features)}, "
                          f"the dataset {described(features)}")  # fmt: skip
    if rows.num_frames == 0:
        raise ConfigError("commit_episode: the episode has no frames")
    task_index = rows.task_indices()
    if task_index.min() < 0 or task_index.max() >= tasks:
        raise ConfigError(
            f"commit_episode: task_index outside 0..{tasks - 1}; get indices from task_index()"
        )
    if capture is not None and rows.capture != capture:
        raise ConfigError(f"commit_episode: rows have capture times of {rows.capture}, the "
                          f"dataset stores those of {capture}")  # fmt: skip


def check_videos(root: Path, cameras: Mapping[str, tuple[int, ...]], episode_index: int) -> None:
    """Every camera's video of `episode_index` is in place (under its staged name, or already
    published by a caller of commit_episode)."""
    videos = [layout.video_path(root, camera, episode_index) for camera in cameras]
    absent = [str(p.relative_to(root)) for p in videos
              if not (p.is_file() or layout.staged(p).is_file())]  # fmt: skip
    if absent:
        raise ConfigError(f"commit_episode: files not in place: {absent}")


def check_histograms(
    cameras: Mapping[str, tuple[int, ...]], histograms: Mapping[str, np.ndarray], frames: int
) -> None:
    """Every camera's histogram ((3, 256), depth (1, 4096)) counted exactly `frames`
    downsampled frames."""
    if set(histograms) != set(cameras):
        raise ConfigError(
            f"commit_episode: histograms for {sorted(histograms)}, cameras are {sorted(cameras)}"
        )
    for name, (height, width, channels) in cameras.items():
        hist = np.asarray(histograms[name])
        if hist.shape != histogram_shape((height, width, channels)):
            raise ConfigError(f"commit_episode: camera {name!r} histogram shape {hist.shape}")
        stride = downsample_factor(height, width)
        per_frame = -(-height // stride) * -(-width // stride)
        counted = hist.sum(axis=1)
        if not np.all(counted == frames * per_frame):
            raise ConfigError(
                f"commit_episode: camera {name!r} histogram counts {counted[0] // per_frame} "
                f"frames, the data has {frames}"
            )
