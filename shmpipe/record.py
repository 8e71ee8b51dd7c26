"""A recording session as `shmpipe record` runs it: paced ticks, episodes, resets and figures.

`RecordSession` drives a started Pipeline from camera sources: each tick loans every camera's
next ring slot, lets the source capture into it and adds the frame. Keys arrive through
`press()` (any thread), figures leave as data (`figures`, `EpisodeSummary`, events given to a
callback), so the state machine runs and is tested without a terminal.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from shmpipe.results import PipelineStatus

log = logging.getLogger("shmpipe.record")

Key = Literal["next", "rerecord", "stop"]
REPEATS_TOLERANCE = 0.05  # a camera may deliver up to 5 % fewer distinct frames than fps
PUBLISH_PERIOD_S = 0.25  # how often the loop publishes a copy of its figures (the live view)
RATE_WINDOW_S = 1.0  # live capture fps: distinct frames over about the last second


class Captured(Protocol):
    time: float  # when the camera took the frame (one clock for all sources)
    sequence: int  # repeats when the camera delivered no new frame


class Source(Protocol):
    shape: tuple[int, int, int]

    def read_into(self, out: np.ndarray) -> Captured: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """What to record: `episodes` new episodes of `episode_time_s` each, `reset_time_s` of
    reset (not recorded) between them, at `fps`, every row labelled `task`; `features`
    (name -> dims) are filled with zeros."""

    fps: int
    task: str
    episodes: int
    episode_time_s: float
    reset_time_s: float
    features: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def episode_frames(self) -> int:
        return max(1, round(self.episode_time_s * self.fps))


class Pacer:
    """Ticks at `fps`: wait() sleeps until the next tick is due. A tick that starts more than
    one period after it was due is late; the schedule then restarts from that tick instead of
    rushing through the missed ones (which would only record repeated camera frames)."""

    def __init__(self, fps: int, clock=time.perf_counter, sleep=time.sleep) -> None:
        self.period, self._clock, self._sleep = 1.0 / fps, clock, sleep
        self.restart()

    def restart(self) -> None:
        """Start a new schedule (an episode, a reset): the first tick is due now."""
        self._due = self._clock()
        self.late_ticks = 0

    def wait(self) -> None:
        now = self._clock()
        if now < self._due:
            self._sleep(self._due - now)
        elif now - self._due > self.period:
            self.late_ticks += 1
            self._due = now
        self._due += self.period


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


@dataclass(frozen=True)
class CameraSummary:
    frames: int
    distinct_frames: int
    capture_fps: float  # distinct frames per second of the episode
    video_bytes: int
    overflow: int  # frames that waited in the backlog
    warning: str | None  # too few distinct frames (repeats_warning)


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
            f"{camera_label(name)} {c.capture_fps:.1f} fps ({c.distinct_frames} distinct)"
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


class RecordSession:
    """Records `plan` into a started `pipe` from `sources` (feature key -> Source, shapes as
    the pipeline's cameras). run() returns when the planned episodes are saved or a stop key
    came; an exception (Ctrl-C too) cancels the open episode and propagates."""

    def __init__(
        self,
        pipe,
        sources: Mapping[str, Source],
        plan: Plan,
        on_event: Callable[[Event], None] = lambda event: None,
        clock=time.perf_counter,
        sleep=time.sleep,
    ) -> None:
        self.pipe, self.sources, self.plan, self._on_event = pipe, dict(sources), plan, on_event
        self._clock = clock
        self._pacer = Pacer(plan.fps, clock, sleep)
        self._keys: collections.deque[Key] = collections.deque()
        self._stop = False
        self._zeros = {n: np.zeros(dims, np.float32) for n, dims in plan.features.items()}
        # during a reset the cameras keep streaming into scratch buffers (drained, so the next
        # episode starts on fresh frames, and their rate stays visible)
        self._scratch = {key: np.empty(src.shape, np.uint8) for key, src in self.sources.items()}
        self._distinct_total = dict.fromkeys(self.sources, 0)
        self._last_sequence: dict[str, int | None] = dict.fromkeys(self.sources)
        self._rate_samples: collections.deque = collections.deque()
        self._next_publish = 0.0
        self.figures: Figures | None = None

    # -- keys (any thread) --------------------------------------------------------------
    def press(self, key: Key) -> None:
        """Queue a key: "next" ends the episode (or the reset) early, "rerecord" cancels the
        episode and records it again, "stop" saves the episode and ends the session."""
        self._keys.append(key)

    # -- the session ----------------------------------------------------------------------
    def run(self) -> SessionResult:
        saved: list[EpisodeSummary] = []
        self._on_event(SessionStarted(self.pipe.next_episode_index, self.plan.episodes))
        while len(saved) < self.plan.episodes and not self._stop:
            summary = self._episode(len(saved) + 1)
            if summary is not None:
                saved.append(summary)
                self._on_event(EpisodeSaved(summary))
            if len(saved) < self.plan.episodes and not self._stop and self.plan.reset_time_s > 0:
                self._reset(len(saved) + 1)
        return SessionResult(saved, stopped_early=len(saved) < self.plan.episodes)

    def _episode(self, number: int) -> EpisodeSummary | None:
        """Record one episode; its summary once saved, or None if it was cancelled ("rerecord",
        or "stop" before its first frame)."""
        index, target = self.pipe.next_episode_index, self.plan.episode_frames
        tracks = {key: CameraTrack() for key in self.sources}
        skew = SkewTrack()
        self._pacer.restart()
        started = self._clock()
        try:
            while tracks_frames(tracks) < target:
                self._pacer.wait()
                pressed = self._take_key("recording")
                if pressed == "rerecord":
                    self._cancel(index, tracks)
                    return None
                if pressed is not None and tracks_frames(tracks):
                    break  # "next", or "stop" (after saving)
                if pressed == "stop":
                    return None  # nothing recorded yet, nothing to save
                self._record_tick(tracks, skew)
                self._publish("recording", number, started, tracks, skew, target)
            duration = self._clock() - started
            self._publish("saving", number, started, tracks, skew, target, force=True)
            result = self.pipe.finish_episode()
        except BaseException:
            self._abandon()
            raise
        return self._summary(result, tracks, skew, duration)

    def _record_tick(self, tracks: dict[str, CameraTrack], skew: SkewTrack) -> None:
        frame: dict[str, np.ndarray] = dict(self._zeros)
        times = []
        for key, source in self.sources.items():
            buffer = self.pipe.loan(key)
            captured = source.read_into(buffer)
            frame[key] = buffer
            tracks[key].see(captured.sequence)
            self._count_distinct(key, captured.sequence)
            times.append(captured.time)
        self.pipe.add_frame(frame, task=self.plan.task)
        skew.see(times)

    def _reset(self, number: int) -> None:
        """Reset time: the cameras stream, nothing is recorded; "next" ends it early."""
        self._pacer.restart()
        started = self._clock()
        frames = round(self.plan.reset_time_s * self.plan.fps)
        tracks = {key: CameraTrack() for key in self.sources}
        while self._clock() - started < self.plan.reset_time_s:
            self._pacer.wait()
            pressed = self._take_key("reset")
            if pressed is not None:  # "next" ends the reset, "stop" also the session
                return
            for key, source in self.sources.items():
                sequence = source.read_into(self._scratch[key]).sequence
                tracks[key].see(sequence)
                self._count_distinct(key, sequence)
            self._publish("reset", number, started, tracks, SkewTrack(), frames)

    def _take_key(self, phase: str) -> Key | None:
        """The first pending key that means something in `phase` (a "stop" also ends the
        session); ignored keys are reported as notices."""
        while self._keys:
            key = self._keys.popleft()
            if key == "stop":
                self._stop = True
            if phase == "reset" and key == "rerecord":
                self._on_event(Notice("← ignored during the reset: the episode is already saved"))
                continue
            return key
        return None

    def _cancel(self, index: int, tracks: dict[str, CameraTrack]) -> None:
        self.pipe.cancel_episode()
        self._on_event(EpisodeCancelled(index, tracks_frames(tracks)))

    def _abandon(self) -> None:
        """On an error or Ctrl-C: cancel the open episode (if the pipeline still can)."""
        try:
            self.pipe.cancel_episode()
        except Exception as error:  # the original error matters more
            log.warning("cancelling the open episode failed: %s", error)

    def _summary(self, result, tracks: dict[str, CameraTrack], skew: SkewTrack,
                 duration: float) -> EpisodeSummary:  # fmt: skip
        fps = self.plan.fps
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
        summary = EpisodeSummary(
            episode_index=result.episode_index,
            num_frames=result.num_frames,
            fps=fps,
            duration_s=duration,
            finish_s=result.timings["total"],
            late_ticks=self._pacer.late_ticks,
            worst_skew_ms=skew.worst_s * 1000,
            mean_skew_ms=skew.mean_s * 1000,
            cameras=cameras,
            worker_restarts=result.worker_restarts,
        )
        for warning in summary.warnings:
            log.warning("episode %d: %s", result.episode_index, warning)
        return summary

    # -- live figures -----------------------------------------------------------------------
    def _count_distinct(self, key: str, sequence: int) -> None:
        if sequence != self._last_sequence[key]:
            self._distinct_total[key] += 1
            self._last_sequence[key] = sequence

    def _publish(self, phase, number: int, started: float, tracks: dict[str, CameraTrack],
                 skew: SkewTrack, target: int, force: bool = False) -> None:  # fmt: skip
        """Every PUBLISH_PERIOD_S, replace `figures` with a fresh copy (one assignment, so a
        reader in another thread sees the old copy or the new one)."""
        now = self._clock()
        if now < self._next_publish and not force:
            return
        self._next_publish = now + PUBLISH_PERIOD_S
        rates = self._capture_rates(now)
        frames = tracks_frames(tracks)
        elapsed = now - started
        if phase == "reset":
            remaining = max(0.0, self.plan.reset_time_s - elapsed)
        else:
            remaining = (target - frames) / self.plan.fps
        warnings = []
        if phase == "recording" and elapsed >= RATE_WINDOW_S:
            fps = self.plan.fps
            warnings = [w for key, t in tracks.items() if (w := repeats_warning(key, t, fps))]
        self.figures = Figures(
            phase=phase,
            episode_index=self.pipe.next_episode_index,
            episode_number=number,
            episodes=self.plan.episodes,
            elapsed_s=elapsed,
            remaining_s=remaining,
            frames=frames,
            late_ticks=self._pacer.late_ticks,
            worst_skew_ms=skew.worst_s * 1000,
            cameras={
                key: CameraFigures(rates[key], track.frames, track.distinct)
                for key, track in tracks.items()
            },
            status=self.pipe.status(),
            disk_free_bytes=disk_free(self.pipe.root),
            warnings=warnings,
        )

    def _capture_rates(self, now: float) -> dict[str, float]:
        """Distinct frames per second per camera, over about the last RATE_WINDOW_S."""
        samples = self._rate_samples
        samples.append((now, dict(self._distinct_total)))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        then, counts = samples[0]
        span = now - then
        return {k: (self._distinct_total[k] - counts[k]) / span if span > 0 else 0.0
                for k in self.sources}  # fmt: skip


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
