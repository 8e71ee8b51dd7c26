"""A recording session as `shmpipe record` runs it: paced ticks, episodes, resets and figures.

`RecordSession` drives a started Pipeline from camera sources: each tick loans every camera's
next ring slot, lets the source capture into it and adds the frame. Keys arrive through
`press()` (any thread), figures leave as data (`figures`, `EpisodeSummary`, events given to a
callback), so the state machine runs and is tested without a terminal.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from shmpipe.dataset import capture_times
from shmpipe.stats.timing import episode_timing
from shmpipe.tools.record.figures import (
    CameraFigures,
    CameraTrack,
    EpisodeCancelled,
    EpisodeSaved,
    EpisodeSummary,
    Event,
    Figures,
    Notice,
    SessionResult,
    SessionStarted,
    SkewTrack,
    disk_free,
    episode_summary,
    repeats_warning,
    tracks_frames,
)

log = logging.getLogger("shmpipe.tools.record.session")

Key = Literal["next", "rerecord", "stop"]
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
        # each camera's newest frame: (sequence, when captured); a repeat keeps its first time
        self._newest: dict[str, tuple[int | None, float]] = dict.fromkeys(self.sources, (None, 0))
        self._store_times = bool(getattr(pipe, "capture_times", False))
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
        except BaseException as error:
            self._abandon(wait=not isinstance(error, KeyboardInterrupt))  # Ctrl-C: at once
            raise
        timing = None
        if self._store_times:  # then the summary's figures come from the stored capture times
            timing = episode_timing(capture_times.read_episode(result.data, [*self.sources]))
        return episode_summary(result, tracks, skew, duration, self.plan.fps,
                               self._pacer.late_ticks, timing)  # fmt: skip

    def _record_tick(self, tracks: dict[str, CameraTrack], skew: SkewTrack) -> None:
        frame: dict[str, np.ndarray] = dict(self._zeros)
        times, raw = {}, []
        for key, source in self.sources.items():
            buffer = self.pipe.loan(key)
            captured = source.read_into(buffer)
            frame[key] = buffer
            tracks[key].see(captured.sequence)
            self._count_distinct(key, captured.sequence)
            if captured.sequence != self._newest[key][0]:
                self._newest[key] = (captured.sequence, captured.time)
            times[key] = self._newest[key][1]
            raw.append(captured.time)
        self.pipe.add_frame(frame, self.plan.task, times if self._store_times else None)
        skew.see(raw)

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

    def _abandon(self, wait: bool) -> None:
        """On an error or Ctrl-C: cancel the open episode (if the pipeline still can)."""
        try:
            self.pipe.cancel_episode(wait=wait)
        except Exception as error:  # the original error matters more
            log.warning("cancelling the open episode failed: %s", error)

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
