"""The recording pipeline as the control loop sees it: start, add frames, finish or cancel.

`add_frame` checks the whole frame, stages every camera image (a ring slot, or the backlog when
a ring is full) and then commits them and the numeric row together, so a frame is in every camera
and in the rows, or in none (shmpipe.recorder.frame_intake). `finish_episode` ends the take
(shmpipe.recorder.finish): the workers are told how many frames the episode has, its data and
metadata are written while the encoders flush, and once they are done it is committed to the
LeRobot v3.0 dataset at `root`.
The episode's state is the take's (shmpipe.recorder.take); the pipeline is a front over it.
Workers that die or stall are replaced on the way (shmpipe.recorder.supervisor).
"""

from __future__ import annotations

import functools
import os
import weakref
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import numpy as np

from shmpipe.dataset import layout
from shmpipe.dataset.info import check_fps
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.errors import UsageError
from shmpipe.recorder import limits, rolling, settings
from shmpipe.recorder.committer import Committer, FinishHandle
from shmpipe.recorder.finish import CANCEL_WAIT_S, finish
from shmpipe.recorder.frame_intake import FrameIntake
from shmpipe.recorder.guards import CLOSED, NEW, STARTED, CallGuard
from shmpipe.recorder.preview import PreviewConfig
from shmpipe.recorder.results import EpisodeResult, PipelineStatus
from shmpipe.recorder.rolling_capture import RollingCapture
from shmpipe.recorder.session import Session
from shmpipe.recorder.sizing import plan_start
from shmpipe.recorder.take import IDLE, LIVE, ROLLING, Take
from shmpipe.system import priority
from shmpipe.video.encoder_config import VideoEncoderConfig

Overflow = Literal["backlog", "block", "error"]
OVERFLOW_POLICIES = ("backlog", "block", "error")


class Pipeline:
    """Records episodes of cameras (name -> (h, w, 3) RGB uint8) and numeric features (name ->
    (n,) float32, or ((n,), dtype) for "float64", "int32", "int64" or "bool") under `root`. A
    full ring (`ring_slots`, default from `ring_budget_bytes`) sends frames to the backlog
    (memory up to `backlog_bytes`, then disk), or with `overflow` "block" waits, "error" raises.
    backend "process"/"thread" (default $SHMPIPE_BACKEND); workers run at `encoder_priority`
    ("idle" or nice 0..19), the thread calling start() in SCHED_FIFO `control_priority` if
    permitted (None: left alone); workers are replaced after `stall_timeout_s` of silence;
    robot_type and feature_names go into meta/info.json. `capture_times=True` stores each
    camera's capture time add_frame is given (float64 column `capture_time.<camera>`);
    `preview=PreviewConfig(...)` shows the cameras live in Rerun. `preroll_s=N`: rolling capture
    (shmpipe.recorder.rolling): frames roll through an encoded window of the last N s until
    keep(), which starts the episode with them."""

    def __init__(
        self,
        root: str | os.PathLike,
        fps: int,
        cameras: Mapping[str, tuple[int, int, int]],
        features: Mapping[str, tuple] | None = None,
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
        preroll_s: float | None = None,
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
        self.preroll_s = rolling.check_preroll(preroll_s)
        self._guard, self._stack = CallGuard(), ExitStack()
        self._owner = [os.getpid()]  # the process that started it (set again by start())
        self._finalizer = weakref.finalize(self, _release, self._stack, self._owner)

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> Pipeline:
        """Check every setting (the encoder is opened once at the real size), make the rings
        and start the workers; they live until close(). Nothing is written if this fails."""
        self._guard.check_new()
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
            first = Take(1, self._dataset.next_episode_index, self._dataset.new_rows())
            self._session = Session(
                self._stack, self.cameras, videos, self.ring_slots, self.backlog_bytes,
                self.root / layout.SPILL_DIR, self.backend, self.stall_timeout_s,
                self.control_priority, self.preview,
                {name: spec.shape for name, spec in self.features.items()},
                self.preroll_s and rolling.plan(self.preroll_s, self.fps, self.ring_slots)
            )  # fmt: skip
            self._committer = Committer(self._session, self._dataset, self._stack)
            self._session.live.current = first
            self._rolling = RollingCapture(self._session)
            video_path = functools.partial(layout.staged_video_path, self.root)
            self._intake = FrameIntake(self._session, self._dataset, self.features, self.overflow,
                                       self.capture_times, video_path, self._rolling)  # fmt: skip
            limits.prove_room()  # for an episode's threads and files, naming a short limit
        except BaseException as exc:
            self._stack.close()
            error = limits.limit_error(exc)
            if error is not None:
                raise error from exc
            raise
        failed[0] = False
        self._guard.started()
        return self

    @property
    def _current(self) -> Take:
        return self._session.live.current

    @property
    def next_episode_index(self) -> int:
        """The index the next (or the open) episode gets, once start() opened the dataset
        (counting the episodes committing in the background)."""
        return self._committer.final_index(self._current.episode)

    @property
    def episode_frames(self) -> int:
        """Frames in the open episode (0 if none), the frame of an add_frame that raised too
        if it went in (a signal arriving during its commit is delivered once it is in)."""
        return self._current.frames if self._guard.state is STARTED else 0

    @property
    def rolling(self) -> bool:
        """Rolling capture: frames go into the window, nothing is kept yet (keep() keeps it)."""
        return self._guard.state is STARTED and self._current.state is ROLLING

    def close(self) -> None:
        """Wait for every episode committing in the background, then stop the workers and
        remove all shared memory. An open episode is discarded, with a warning on the `shmpipe`
        logger naming it: only finish_episode() keeps frames."""
        if self._guard.state is CLOSED:
            return
        if self._guard.state is STARTED and self._guard.in_owner():
            self._committer.close()
        self._guard.closed()
        self._finalizer()

    def __enter__(self) -> Pipeline:
        return self.start() if self._guard.state is NEW else self  # started already: as is

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
            self._intake.add(frame, task, capture_times)
        finally:
            self._guard.leave()

    def loan(self, camera: str) -> np.ndarray:
        """A writable (H, W, 3) uint8 view of `camera`'s next ring slot for a driver to fill in
        place; add_frame then copies nothing. One not added ends at the next loan/add_frame."""
        with self._guard.call("loan"), self._session.lock:
            return self._session.loan(camera)

    def finish_episode(self, wait: bool = True) -> EpisodeResult | FinishHandle:
        """Close the open episode: its videos, stats and rows are on disk on return (timings:
        see EpisodeResult), after any finished before. If it fails, the episode is discarded and
        the error raised. `wait=False` returns a FinishHandle at once: the episode commits in the
        background while add_frame records the next (shmpipe.recorder.committer)."""
        with self._guard.call("finish_episode"):
            take = self._current
            if take.state is IDLE or take.frames == 0:
                raise UsageError("finish_episode(): no frames were added since the last episode")
            take.check_finishable()  # rolling: nothing kept yet; the window goes on
            if not wait:  # the next take is current on return, however it went
                return self._committer.hand_over(take, self._dataset.new_rows())
            self._committer.wait_all()  # episodes commit in order
            try:
                return finish(take, self._session, self._dataset)
            finally:
                self._session.live.current = take.successor(self._committer.next_index(take))

    def keep(self) -> int:
        """Rolling capture: the last preroll_s seconds (rounded up to a second) and what follows
        are the open episode (finish_episode() commits it, cancel_episode() rolls again; before
        any frame, the next one starts it). Returns the frames it holds now: the pre-roll."""
        with self._guard.call("keep"), self._session.lock:
            self._rolling.keep(self._current)
            return self._current.frames

    def cancel_episode(self, wait: bool = True) -> None:
        """Discard the open episode (frames skipped, partial files deleted); the workers confirm
        within 0.5 s, or with `wait=False` (Ctrl-C) are not waited for: they drop it first."""
        with self._guard.call("cancel_episode"):
            if self._current.state in LIVE:
                self._committer.discard_current(CANCEL_WAIT_S if wait else 0.0)

    def status(self) -> PipelineStatus:
        """Live figures read from shared counters; cheap enough for a progress display."""
        with self._guard.call("status"), self._session.lock:
            return self._committer.status(self._session.status(self._current))


def _release(stack: ExitStack, owner: list[int]) -> None:
    """Free everything start() made, unless this is a forked child: the parent still uses it."""
    if os.getpid() == owner[0]:
        stack.close()
