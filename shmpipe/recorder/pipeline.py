"""The recording pipeline as the control loop sees it: start, add frames, finish or cancel.

`add_frame` checks the whole frame, stages every camera image (a ring slot, or the backlog when
a ring is full) and then commits them and the numeric row together, so a frame is in every camera
and in the rows, or in none. `finish_episode` tells the workers how many frames the episode has,
writes the episode's data and metadata while the encoders flush, and once they are done commits
the episode to the LeRobot v3.0 dataset at `root`. Workers that die or stall are replaced on the
way (shmpipe.recorder.supervisor).
"""

from __future__ import annotations

import functools
import logging
import os
import time
import weakref
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import numpy as np

from shmpipe.dataset import layout
from shmpipe.dataset.info import check_fps
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.errors import UsageError
from shmpipe.recorder import frame_input, limits, settings
from shmpipe.recorder.early_commit import EarlyCommit
from shmpipe.recorder.guards import CallGuard, SignalsDeferred
from shmpipe.recorder.preview import PreviewConfig
from shmpipe.recorder.results import EpisodeResult, PipelineStatus
from shmpipe.recorder.session import Session, episode_result
from shmpipe.recorder.sizing import plan_start
from shmpipe.recorder.supervisor import CANCEL_WAIT_S
from shmpipe.system import priority
from shmpipe.video.encoder_config import VideoEncoderConfig

log = logging.getLogger("shmpipe")
Overflow = Literal["backlog", "block", "error"]
OVERFLOW_POLICIES = ("backlog", "block", "error")
_NO_TASK = object()  # add_frame checks a task text once per text object


class Pipeline:
    """Records episodes of cameras (name -> (h, w, 3) RGB uint8) and numeric features (name ->
    (dims,) float32) under `root`. A full ring (`ring_slots`, default from `ring_budget_bytes`)
    sends frames to the backlog (memory up to `backlog_bytes`, then disk), or with `overflow`
    "block" waits, "error" raises. backend "process"/"thread" (default $SHMPIPE_BACKEND);
    workers run at `encoder_priority` ("idle" or nice 0..19), the thread calling start() in
    SCHED_FIFO `control_priority` if permitted (None: left alone); workers are replaced after
    `stall_timeout_s` of silence; robot_type and feature_names go into meta/info.json.
    `capture_times=True` stores each camera's capture time add_frame is given (a float64 column
    `capture_time.<camera>`); `preview=PreviewConfig(...)` shows the cameras live in Rerun."""

    def __init__(
        self,
        root: str | os.PathLike,
        fps: int,
        cameras: Mapping[str, tuple[int, int, int]],
        features: Mapping[str, tuple[int, ...]] | None = None,
        encoder: VideoEncoderConfig | None = None,
        ring_slots: int | None = None,
        ring_budget_bytes: int = settings.DEFAULT_RING_BUDGET_BYTES,
        overflow: Overflow = "backlog",
        backend: settings.Backend | None = None,
        encoder_priority: priority.EncoderPriority = priority.DEFAULT_ENCODER_PRIORITY,
        control_priority: int | None = priority.DEFAULT_CONTROL_PRIORITY,
        backlog_bytes: int | None = None,
        stall_timeout_s: float = 5.0,
        robot_type: str | None = None,
        feature_names: Mapping[str, list[str]] | None = None,
        capture_times: bool = False,
        preview: PreviewConfig | None = None,
    ) -> None:
        self.root, self.fps = Path(root).absolute(), check_fps(fps)  # cwd may change
        self.cameras, self.features = settings.check_layout(cameras, features, feature_names)
        self.overflow = settings.check_choice("overflow", overflow, OVERFLOW_POLICIES)
        self.backend = settings.check_choice("backend", backend or settings.backend_from_env(),
                                           settings.BACKENDS)  # fmt: skip
        self.stall_timeout_s = settings.check_stall_timeout(stall_timeout_s)
        self.backlog_bytes = settings.check_backlog_bytes(backlog_bytes)
        self.encoder, self.ring_budget_bytes = encoder or VideoEncoderConfig(), ring_budget_bytes
        self.ring_slots = settings.check_ring_slots(ring_slots)
        self.encoder_priority = priority.check(encoder_priority)
        self.control_priority = settings.check_fifo_priority(control_priority)
        self.robot_type, self.feature_names = robot_type, dict(feature_names or {})
        self.capture_times, self.preview = bool(capture_times), preview
        self._guard, self._stack = CallGuard(), ExitStack()
        self._signals_deferred = SignalsDeferred()  # reused by every add_frame
        self._owner = [os.getpid()]  # the process that started it (set again by start())
        self._finalizer = weakref.finalize(self, _release, self._stack, self._owner)
        self._open, self._task_checked = False, _NO_TASK

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> Pipeline:
        """Check every setting (the encoder is opened once at the real size), make the rings
        and start the workers; they live until close(). Nothing is written if this fails."""
        if self._guard.state != "new":
            state = "already started" if self._guard.state == "started" else "closed"
            raise UsageError(f"Pipeline.start(): the pipeline is {state}; make a new one")
        self._owner[0] = os.getpid()
        try:
            videos, self.encoder, self.ring_slots, self.backlog_bytes = plan_start(self)
            self._dataset = DatasetWriter.open(
                self.root, self.fps, self.cameras, self.features, self.encoder.as_dict(),
                robot_type=self.robot_type, feature_names=self.feature_names or None,
                capture=self.capture_times)  # fmt: skip
            dataset, failed = self._dataset, [True]  # a failed start leaves no new dataset
            self._stack.callback(lambda: dataset.close(discard_new=failed[0]))
            # a resumed dataset fixes the column order of every later file
            self.cameras, self.features = dict(self._dataset.cameras), dict(self._dataset.features)
            self._rows = EpisodeRows(self.features, capture=self._dataset.capture_cameras,
                                     fps=self.fps)  # fmt: skip
            self._expected_keys = frozenset(self.cameras) | frozenset(self.features)
            self._session = Session(
                self._stack, self.cameras, videos, self.ring_slots, self.backlog_bytes,
                self.root / layout.SPILL_DIR, self.backend, self.stall_timeout_s,
                self.control_priority, self.preview, self.features)  # fmt: skip
            limits.prove_room()  # for an episode's threads and files, naming a short limit
        except BaseException as exc:
            self._stack.close()
            error = limits.limit_error(exc)
            if error is not None:
                raise error from exc
            raise
        failed[0] = False
        self._feeds, self._supervisor = self._session.feeds, self._session.supervisor
        self._feed_list = list(self._feeds.values())
        self._guard.started()
        return self

    @property
    def next_episode_index(self) -> int:
        """The index the next (or the open) episode gets; known once start() opened the dataset."""
        return self._dataset.next_episode_index

    @property
    def episode_frames(self) -> int:
        """Frames in the open episode (0 if none): after add_frame raised, whether that frame
        went in (a signal arriving during its commit is delivered once it is in) or not."""
        return self._rows.num_frames if self._open else 0

    def close(self) -> None:
        """Stop the workers and remove all shared memory. An open episode is discarded, with a
        warning on the `shmpipe` logger naming it: only finish_episode() keeps frames."""
        if self._guard.state == "closed":
            return
        if self._guard.state == "started" and self._open and self._guard.in_owner():
            log.warning("close(): episode %d discarded with its %d frames (finish_episode() was "
                        "not called)", self.next_episode_index, self._rows.num_frames)  # fmt: skip
            try:
                self._cancel(wait_s=0.0, stop=True)  # nobody waits on workers being stopped
            except Exception as exc:
                log.warning("close(): cancelling the open episode failed: %s", exc)
        self._guard.state = "closed"
        self._finalizer()

    def __enter__(self) -> Pipeline:
        return self.start() if self._guard.state == "new" else self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- recording -------------------------------------------------------------------------
    def add_frame(self, frame: Mapping, task: str,
                  capture_times: Mapping[str, float] | None = None) -> None:  # fmt: skip
        """Add one time step: every camera image and feature value, and its task text (and,
        with Pipeline(capture_times=True), camera -> when it captured this image, in seconds).
        All or nothing: if this raises (bad input, Ctrl-C, out of memory), the frame is in no
        camera and no row, and the episode goes on."""
        self._guard.enter("add_frame")  # no context-manager objects on this path
        try:
            sources, row, times = _checked_input(self, frame, task, capture_times)
            _make_ready(self)
            feeds = self._feed_list
            staged = [feed.stage(source) for feed, source in zip(feeds, sources, strict=True)]
            with self._signals_deferred:
                task_index = self._dataset.task_index(task)
                index = self._rows.num_frames
                for feed, where in zip(feeds, staged, strict=True):
                    feed.commit(where, self._take, index)
                self._session.publish_row(row, self._take, index)
                self._rows.append(row, task_index, times)
                self._session.wake_readers()
            self._session.warn_if_behind()
        finally:
            self._guard.leave()

    def loan(self, camera: str) -> np.ndarray:
        """A writable (H, W, 3) uint8 view of `camera`'s next ring slot for a driver to fill in
        place; add_frame then copies nothing. One not added ends at the next loan/add_frame."""
        with self._guard.call("loan"):
            return self._session.loan(camera)

    def finish_episode(self) -> EpisodeResult:
        """Close the open episode: its videos, stats and rows are on disk on return (timings:
        see EpisodeResult). If it fails (a worker error, the disk), the episode is discarded
        and the error raised."""
        with self._guard.call("finish_episode"):
            return self._finish()

    def _finish(self) -> EpisodeResult:
        if not self._open or self._rows.num_frames == 0:
            raise UsageError("finish_episode(): no frames were added since the last episode")
        t0 = time.perf_counter()
        episode, n = self._dataset.next_episode_index, self._rows.num_frames
        try:
            self._session.check_frame_counts(n, episode)
            early = EarlyCommit(self._session, self._dataset, episode, self._rows)
            done = self._supervisor.finish_take(n, early)  # written meanwhile: see EarlyCommit
            waited = time.perf_counter() - t0
            committed = early.commit()
        except BaseException:
            self._cancel()
            raise
        result = episode_result(self._session, committed, done, waited, t0)
        self._end_episode()
        return result

    def cancel_episode(self, wait: bool = True) -> None:
        """Discard the open episode (frames skipped, partial files deleted); the workers confirm
        within 0.5 s, or with `wait=False` (Ctrl-C) are not waited for: they drop it first."""
        with self._guard.call("cancel_episode"):
            if self._open:
                self._cancel(CANCEL_WAIT_S if wait else 0.0)

    def _cancel(self, wait_s: float = CANCEL_WAIT_S, stop: bool = False) -> None:
        try:
            self._supervisor.cancel_take(wait_s)
            if stop:
                self._supervisor.stop_all()  # before the files go: no worker writes after
        finally:
            # whatever a worker killed meanwhile left of the take (its successor never heard of it)
            self._dataset.discard_episode(self._dataset.next_episode_index)
            self._end_episode()

    def _end_episode(self) -> None:
        self._supervisor.close_take()
        for feed in self._feeds.values():
            feed.clear()
        self._rows.clear()
        self._open = False

    # -- status ----------------------------------------------------------------------------
    def status(self) -> PipelineStatus:
        """Live figures read from shared counters; cheap enough for a progress display."""
        with self._guard.call("status"):
            episode = self._dataset.next_episode_index if self._open else None
            return self._session.status(episode, self._rows.num_frames)


def _checked_input(pipe: Pipeline, frame: Mapping, task: str, capture_times) -> tuple:
    """add_frame's checks, before anything is written: (each camera's source for its stage(),
    the feature row, the capture times or None). The task is checked once per text object."""
    if task is not pipe._task_checked:
        pipe._task_checked = frame_input.check_task(task)
    frame_input.check_keys(frame, pipe._expected_keys)
    sources = [feed.source_of(frame[feed.name]) for feed in pipe._feed_list]
    row = {n: frame_input.to_feature_row(n, frame[n], s) for n, s in pipe.features.items()}
    times = None
    if capture_times is not None or pipe.capture_times:
        times = frame_input.to_capture_times(capture_times, pipe._rows.capture)
    return sources, row, times


def _make_ready(pipe: Pipeline) -> None:
    """What add_frame does before it writes: look after the workers (a failure of the take
    refuses the frame: reported at once, logged, until cancelled), make room in every ring
    (overflow "block"/"error"), open the episode, and grow the rows by doubling."""
    pipe._supervisor.supervise()
    if pipe._supervisor.failures.by_role:
        raise pipe._supervisor.failures.refused_frame(pipe._dataset.next_episode_index)
    if pipe.overflow != "backlog":
        pipe._session.make_room(pipe.overflow == "error")
    if not pipe._open:
        video = functools.partial(layout.staged_video_path, pipe.root)
        pipe._take = pipe._session.open_episode(video, pipe._dataset.next_episode_index)
        pipe._open = True
    pipe._rows.ensure_room()


def _release(stack: ExitStack, owner: list[int]) -> None:
    """Free everything start() made, unless this is a forked child: the parent still uses it."""
    if os.getpid() == owner[0]:
        stack.close()
