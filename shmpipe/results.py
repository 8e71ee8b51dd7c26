"""What the pipeline reports: an episode's outcome and live status figures."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class EpisodeResult:
    """A finished episode.

    `videos[camera] = (path, from_timestamp, to_timestamp)`: the episode is the frames of that
    MP4 with from_timestamp <= t < to_timestamp, frame i at from_timestamp + i / fps.
    `data` is the parquet file with the numeric rows (filter by `episode_index`).
    `timings` are seconds spent in finish_episode: video_flush, stats, data, total."""

    episode_index: int
    num_frames: int
    videos: dict[str, tuple[str, float, float]]
    data: str
    stats: dict[str, dict[str, np.ndarray]]
    timings: dict[str, float]
    ring_high_water: dict[str, int]
    overflow_count: dict[str, int]
    tasks: list[str] = field(default_factory=list)
    worker_restarts: int = 0


@dataclass(frozen=True)
class CameraStatus:
    worker_pid: int
    alive: bool
    frames_written: int  # into the ring since start()
    frames_encoded: int  # released by the encoder since start()
    slots_used: int
    slots_total: int
    backlog: int  # frames waiting in the control process for a free slot


@dataclass(frozen=True)
class StatsStatus:
    worker_pid: int
    alive: bool
    frames_seen: int  # frames counted, all cameras together, since start()


@dataclass(frozen=True)
class PipelineStatus:
    cameras: dict[str, CameraStatus]
    stats: StatsStatus
    episode_index: int | None  # the open episode, if any
    episode_frames: int
