"""What the pipeline reports: an episode's outcome and live status figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from shmpipe.video.capacity import Capacity


class VideoSpan(NamedTuple):
    """Where a camera's episode is: the frames of `path` with from_timestamp <= t <
    to_timestamp, frame i at from_timestamp + i / fps."""

    path: str
    from_timestamp: float
    to_timestamp: float


@dataclass(frozen=True, repr=False)
class EpisodeResult:
    """A finished episode.

    `videos[camera]` is a VideoSpan; `data` the parquet file with the numeric rows; `stats`
    LeRobot's per-feature stats of this episode. `timings`, seconds spent in finish_episode:
    video_flush (waiting for every worker, which includes the encoders' flush; data, stats and
    most of meta are done meanwhile), encoder_flush (the slowest encoder's own flush, timed in
    the worker: the codec's flush, the file's tail written, segments joined if a restart left
    several, the rename into place), data (writing the parquet rows), stats (episode and
    dataset stats), meta (the metadata files and every sync, info.json last), commit (of meta,
    what waited for the videos: their sync and info.json), after_flush (total - video_flush)
    and total."""

    episode_index: int
    num_frames: int
    videos: dict[str, VideoSpan]
    data: str
    stats: dict[str, dict[str, np.ndarray]]
    timings: dict[str, float]
    ring_high_water: dict[str, int]
    overflow_count: dict[str, int]
    tasks: list[str] = field(default_factory=list)
    worker_restarts: int = 0

    def __repr__(self) -> str:
        return (
            f"EpisodeResult(episode_index={self.episode_index}, num_frames={self.num_frames}, "
            f"cameras={list(self.videos)}, finish={self.timings.get('total', 0.0):.3f} s, "
            f"overflow={sum(self.overflow_count.values())}, "
            f"worker_restarts={self.worker_restarts})"
        )


@dataclass(frozen=True)
class CameraStatus:
    worker_pid: int
    alive: bool
    stalled_s: float  # seconds the encoder has shown no sign of life (0 while it works)
    frames_written: int  # into the ring since start()
    frames_encoded: int  # read by the encoder since start()
    slots_used: int
    slots_total: int
    backlog: int  # frames waiting in the control process for a free slot
    backlog_bytes: int  # of those, bytes held in memory
    spilled_frames: int  # frames of this episode that went through the disk spill file
    input_fps: float  # frames added per second, over the last few seconds
    encode_fps: float  # frames encoded per second, over the last few seconds; an encoder
    # whose unencoded frames all arrived in the last 0.25 s keeps up: then the input rate
    finish_wait_s: float  # projected: frames not yet encoded / encode_fps (inf if stalled)
    error: str = ""  # the encoder's failure of the open episode ("" if none): see add_frame


@dataclass(frozen=True)
class StatsStatus:
    worker_pid: int
    alive: bool
    stalled_s: float
    frames_seen: int  # frames counted, all cameras together, since start()
    error: str = ""  # the stats worker's failure of the open episode ("" if none)


@dataclass(frozen=True)
class PreviewStatus:
    worker_pid: int
    alive: bool
    restarts: int  # times it was found dead and started again (at most 3)
    mode: str  # "spawn", "connect" or "save"
    ready: bool = False  # it has opened its viewer or file and shows frames


@dataclass(frozen=True)
class PipelineStatus:
    cameras: dict[str, CameraStatus]
    stats: StatsStatus
    episode_index: int | None  # the open episode, if any
    episode_frames: int
    encoder: str = ""  # the vcodec start() opened ("auto" resolved)
    encoder_notes: list[str] = field(default_factory=list)  # "auto": why each earlier one was not
    preview: PreviewStatus | None = None  # Pipeline(preview=...): its worker, not waited for
    capacity: Capacity | None = None  # start()'s estimate: what the cameras need of the cores
    commits_pending: int = 0  # episodes finished with wait=False, not yet committed
    commit_failures: list[str] = field(default_factory=list)  # background commits that failed

    @property
    def headroom(self) -> float | None:
        """Share of the cores left beyond what the encoders need (start()'s estimate; < 0:
        more than the machine has), or None if unknown."""
        return None if self.capacity is None else self.capacity.headroom
