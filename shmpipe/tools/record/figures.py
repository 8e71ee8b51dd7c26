"""What a recording session reports, as plain data: per-camera tracks (distinct frames, capture
skew), the repeats warning, episode summaries, live figures and the session's events. The live
view and the one-line summaries render these; nothing here touches a terminal or a pipeline.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from shmpipe.recorder.results import PipelineStatus
from shmpipe.stats.timing import CameraTiming, EpisodeTiming

log = logging.getLogger("shmpipe.tools.record.session")
REPEATS_TOLERANCE = 0.05  # a camera may deliver up to 5 % fewer distinct frames than fps


class CameraTrack:
    """One camera over one episode: how many frames were taken, how many of them were new
    (the source's sequence changed), and the capture times."""

    def __init__(self) -> None:
        self.frames = self.distinct = 0
        self._last_sequence: int | None = None

    def see(self, sequence: int) -> None:
        self.frames += 1
        if sequence != self._last_sequence:
            self.distinct += 1
            self._last_sequence = sequence

    def distinct_fps(self, fps: int) -> float:
        """New frames per second of the dataset (stamped at `fps`)."""
        return fps * self.distinct / self.frames if self.frames else 0.0


class SkewTrack:
    """Inter-camera capture skew: per tick, latest minus earliest capture time."""

    def __init__(self) -> None:
        self.worst_s, self.total_s, self.ticks = 0.0, 0.0, 0

    def see(self, times: list[float]) -> None:
        skew = max(times) - min(times)
        self.worst_s = max(self.worst_s, skew)
        self.total_s += skew
        self.ticks += 1

    @property
    def mean_s(self) -> float:
        return self.total_s / self.ticks if self.ticks else 0.0


def repeats_warning(camera: str, track: CameraTrack, fps: int) -> str | None:
    """The loud warning for a camera whose distinct frames fall short of `fps` by more than
    REPEATS_TOLERANCE (its repeated frames are stamped as new ones), else None."""
    if not track.frames or track.distinct >= (1 - REPEATS_TOLERANCE) * track.frames:
        return None
    repeats = 1 - track.distinct / track.frames
    return (
        f"camera {camera_label(camera)} delivered {track.distinct_fps(fps):.1f} distinct "
        f"frames/s but the dataset is stamped at {fps} fps: {repeats * 100:.0f} % of its "
        f"frames are repeats ({track.frames - track.distinct} of {track.frames}; LeRobot #2786)"
    )


def slow_warning(camera: str, timing: CameraTiming, fps: int) -> str | None:
    """repeats_warning's counterpart from stored capture times: the rate over their span."""
    if not timing.is_slow(fps, REPEATS_TOLERANCE):
        return None
    share = timing.repeats / timing.frames * 100
    return (
        f"camera {camera_label(camera)} delivered {timing.capture_fps:.1f} distinct frames/s "
        f"but the dataset is stamped at {fps} fps: {share:.0f} % of its "
        f"frames are repeats ({timing.repeats} of {timing.frames}), worst gap "
        f"{timing.worst_gap_s * 1000:.0f} ms before frame {timing.worst_gap_frame} (LeRobot #2786)"
    )


@dataclass(frozen=True)
class CameraSummary:
    frames: int
    distinct_frames: int
    capture_fps: float  # distinct frames per second of the episode
    video_bytes: int
    overflow: int  # frames that waited in the backlog
    warning: str | None  # too few distinct frames (repeats_warning)
    worst_gap_s: float | None = None  # from the stored capture times (None: not stored)

    @property
    def repeats(self) -> int:
        return self.frames - self.distinct_frames


@dataclass(frozen=True)
class EpisodeSummary:
    """One saved episode, as the one-screen summary shows it."""

    episode_index: int
    num_frames: int
    fps: int
    duration_s: float  # wall time of the recording loop
    finish_s: float  # finish_episode's total
    late_ticks: int
    worst_skew_ms: float
    mean_skew_ms: float
    cameras: dict[str, CameraSummary]
    worker_restarts: int = 0

    @property
    def warnings(self) -> list[str]:
        return [c.warning for c in self.cameras.values() if c.warning]

    @property
    def video_bytes(self) -> int:
        return sum(c.video_bytes for c in self.cameras.values())

    def line(self) -> str:
        """The summary on one line (and its warnings, one line each, after it)."""
        cameras = ", ".join(
            f"{camera_label(name)} {c.capture_fps:.1f} fps ({c.distinct_frames} distinct"
            + (f", worst gap {c.worst_gap_s * 1000:.0f} ms)" if c.worst_gap_s is not None else ")")
            for name, c in self.cameras.items()
        )
        text = (
            f"episode {self.episode_index}: {self.num_frames} frames in {self.duration_s:.2f} s, "
            f"finish {self.finish_s:.3f} s, videos {format_bytes(self.video_bytes)}, "
            f"late ticks {self.late_ticks}, worst skew {self.worst_skew_ms:.1f} ms; {cameras}"
        )
        return "\n".join([text, *(f"WARNING: {w}" for w in self.warnings)])


@dataclass(frozen=True)
class CameraFigures:
    capture_fps: float  # distinct frames per second over about the last second
    frames: int  # taken this episode
    distinct_frames: int


@dataclass(frozen=True)
class Figures:
    """A copy of the loop's figures, published every PUBLISH_PERIOD_S for a live view."""

    phase: Literal["recording", "reset", "saving"]
    episode_index: int
    episode_number: int  # 1-based among this session's episodes
    episodes: int
    elapsed_s: float
    remaining_s: float
    frames: int
    late_ticks: int  # this phase
    worst_skew_ms: float
    cameras: dict[str, CameraFigures]
    status: PipelineStatus | None
    disk_free_bytes: int
    warnings: list[str]


# -- events given to the session's callback (from the loop's thread, between episodes) --------
@dataclass(frozen=True)
class SessionStarted:
    first_episode: int
    episodes: int

    @property
    def resumed(self) -> bool:
        return self.first_episode > 0


@dataclass(frozen=True)
class EpisodeSaved:
    summary: EpisodeSummary


@dataclass(frozen=True)
class EpisodeCancelled:
    episode_index: int
    frames: int  # discarded


@dataclass(frozen=True)
class Notice:
    text: str


Event = SessionStarted | EpisodeSaved | EpisodeCancelled | Notice


@dataclass(frozen=True)
class SessionResult:
    saved: list[EpisodeSummary]
    stopped_early: bool  # Esc before all planned episodes were recorded


def episode_summary(result, tracks: dict[str, CameraTrack], skew: SkewTrack, duration: float,
                    fps: int, late_ticks: int, timing: EpisodeTiming | None = None
                    ) -> EpisodeSummary:  # fmt: skip
    """The summary of a finished episode (`result`: its EpisodeResult), warnings logged.
    With `timing` (from the stored capture times) rates, repeats, gaps and skew come from it."""
    cameras = {
        key: CameraSummary(
            frames=track.frames,
            distinct_frames=track.distinct,
            capture_fps=track.distinct_fps(fps),
            video_bytes=file_size(result.videos[key].path),
            overflow=result.overflow_count.get(key, 0),
            warning=repeats_warning(key, track, fps),
        )
        for key, track in tracks.items()
    }
    if timing is not None:
        for key, t in timing.cameras.items():
            cameras[key] = CameraSummary(t.frames, t.distinct, t.capture_fps,
                                         cameras[key].video_bytes, cameras[key].overflow,
                                         slow_warning(key, t, fps), t.worst_gap_s)  # fmt: skip
        skew = SkewTrack()
        skew.worst_s, skew.total_s, skew.ticks = timing.worst_skew_s, timing.mean_skew_s, 1
    summary = EpisodeSummary(
        episode_index=result.episode_index,
        num_frames=result.num_frames,
        fps=fps,
        duration_s=duration,
        finish_s=result.timings["total"],
        late_ticks=late_ticks,
        worst_skew_ms=skew.worst_s * 1000,
        mean_skew_ms=skew.mean_s * 1000,
        cameras=cameras,
        worker_restarts=result.worker_restarts,
    )
    for warning in summary.warnings:
        log.warning("episode %d: %s", result.episode_index, warning)
    return summary


def tracks_frames(tracks: Mapping[str, CameraTrack]) -> int:
    return next(iter(tracks.values())).frames


def file_size(path: str | os.PathLike) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def disk_free(path: str | os.PathLike) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


IMAGES_PREFIX = "observation.images."


def camera_key(name: str) -> str:
    """The dataset feature key of a camera called `name` on the command line."""
    return name if "." in name else IMAGES_PREFIX + name


def camera_label(key: str) -> str:
    """The short name a person gave the camera (its feature key without the usual prefix)."""
    return key.removeprefix(IMAGES_PREFIX)
