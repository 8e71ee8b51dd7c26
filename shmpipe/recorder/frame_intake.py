"""add_frame's path, from the caller's dict to a frame in every camera and in the rows.

Everything that can refuse a frame runs before anything is written: the checks (keys, task text,
feature values, each camera's image: shmpipe.recorder.frame_input), then the take made ready
(workers looked after, room in every ring, the take opened at its first frame, room for the row).
Only then is every camera's image staged and, with signals deferred, committed together with the
row, so a frame is in every camera and in the rows, or in none (shmpipe.recorder.guards).
"""

from __future__ import annotations

from collections.abc import Mapping

from shmpipe.dataset.feature_types import FeatureSpec
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.recorder import frame_input
from shmpipe.recorder.guards import SignalsDeferred
from shmpipe.recorder.rolling_capture import RollingCapture
from shmpipe.recorder.session import Session
from shmpipe.recorder.take import FAILED, IDLE, Take, VideoPath

_NO_TASK = object()  # a task text is checked once per text object


class FrameIntake:
    """The add_frame of one started Pipeline; `overflow` is its policy for a full ring
    ("backlog", "block" or "error"), `capture_times` whether every frame brings them."""

    def __init__(self, session: Session, dataset: DatasetWriter,
                 features: Mapping[str, FeatureSpec], overflow: str, capture_times: bool,
                 video_path: VideoPath, rolling: RollingCapture) -> None:  # fmt: skip
        self._session, self._dataset, self._features = session, dataset, features
        self.feeds = list(session.feeds.values())
        self._expected_keys = frozenset(session.feeds) | frozenset(features)
        self._overflow, self._capture_times = overflow, capture_times
        self._video_path, self._rolling = video_path, rolling
        self.signals_deferred = SignalsDeferred()  # reused by every frame
        self._task_checked = _NO_TASK

    def add(self, frame: Mapping, task: str, capture_times: Mapping[str, float] | None) -> None:
        """Check, stage and commit one frame (Pipeline.add_frame, inside its call guard)."""
        sources, row, times = self._checked(frame, task, capture_times)
        session = self._session
        with session.lock:  # the rings, the backlog and the workers are ours
            take = self._ready()
            feeds = self.feeds
            staged = [feed.stage(source) for feed, source in zip(feeds, sources, strict=True)]
            with self.signals_deferred:
                index = take.add(feeds, staged, row, self._dataset.task_index(task), times)
                session.publish_row(row, take.number, index)
                session.wake_readers()
            take.counts.warn_if_behind(feeds)

    def _checked(self, frame: Mapping, task: str, capture_times) -> tuple:
        """The checks, before anything is written: (each camera's source for stage(), the
        feature row, the capture times or None); a task text is checked once per object."""
        if task is not self._task_checked:
            self._task_checked = frame_input.check_task(task)
        frame_input.check_keys(frame, self._expected_keys)
        sources = [feed.source_of(frame[feed.name]) for feed in self.feeds]
        row = {n: frame_input.to_feature_row(n, frame[n], s) for n, s in self._features.items()}
        times = None
        if capture_times is not None or self._capture_times:
            capture = self._session.live.current.rows.capture
            times = frame_input.to_capture_times(capture_times, capture)
        return sources, row, times

    def _ready(self) -> Take:
        """The current take, ready for the frame: workers looked after (a failure of the take
        refuses the frame until cancelled), room in every ring (overflow "block"/"error"), the
        take opened at its first frame, room for the row."""
        session = self._session
        take = session.live.current
        session.supervisor.supervise(session.live)
        if take.state is FAILED:
            raise take.refused_frame()
        if self._overflow != "backlog":
            session.make_room(self._overflow == "error", take)
        if take.state is IDLE:
            with self.signals_deferred:  # every encoder is told of the take, or none
                session.open_take(take, self._video_path)
                self._rolling.opened(take)
        take.make_room()
        return take
