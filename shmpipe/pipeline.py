"""The recording pipeline as the control loop sees it: start, add frames, finish or cancel.

`add_frame` checks the whole frame, stages every camera image (a ring slot, or the backlog when
a ring is full) and then commits them and the numeric row together, so a frame is in every camera
and in the rows, or in none. `finish_episode` tells the workers how many frames the episode has,
waits for the encoders' flush and the stats worker, and commits the episode to the LeRobot v3.0
dataset at `root`. Workers that die or stall are replaced on the way (shmpipe.supervisor).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

from shmpipe import codec_probe, config, frame_input, layout, names, priority
from shmpipe.camera_feed import BacklogBudget, CameraFeed, RateMeter
from shmpipe.config import VideoEncoderConfig
from shmpipe.dataset import DatasetWriter, check_names
from shmpipe.doorbell import Doorbell
from shmpipe.episode_rows import EpisodeRows
from shmpipe.errors import ConfigError, FrameError, RingFullError, UsageError
from shmpipe.interrupts import InterruptsDeferred
from shmpipe.messages import EncoderSpec, Owner, StartEpisode, StatsSpec, VideoSettings
from shmpipe.results import CameraStatus, EpisodeResult, PipelineStatus, StatsStatus, VideoSpan
from shmpipe.ring import ENCODER_READER, STATS_READER, RingWriter, ring_bytes
from shmpipe.segment import shm_free_bytes, shm_shortage_error
from shmpipe.stats_store import StatsStore
from shmpipe.supervisor import Supervisor

log = logging.getLogger("shmpipe")
Overflow = Literal["backlog", "block", "error"]
OVERFLOW_POLICIES = ("backlog", "block", "error")
STATS = "stats"  # the stats worker's label; encoders are labelled by camera
_forks = [0]  # bumped in every forked child: a Pipeline belongs to the process that started it
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class Pipeline:
    """Records episodes of several cameras (and numeric features) under `root`.

    cameras: name -> (height, width, 3), RGB uint8 frames. features: name -> (dims,) float32.
    ring_slots: slots per camera ring (default: a share of `ring_budget_bytes`, never below
    what the encoder needs). overflow, when a ring is full: "backlog" (default: keep a copy in
    memory up to `backlog_bytes`, then on disk; nothing is dropped and nothing waits), "block"
    (wait for a slot) or "error" (raise RingFullError; the frame is not added).
    backend: "process" or "thread"; default from $SHMPIPE_BACKEND, else "process".
    encoder_priority: "idle" or a nice level 0..19 for the workers (README: priority matrix).
    stall_timeout_s: a worker silent this long while it should work is replaced.
    robot_type, feature_names (feature -> a name per dimension) go into meta/info.json.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        fps: int,
        cameras: Mapping[str, tuple[int, int, int]],
        features: Mapping[str, tuple[int, ...]] | None = None,
        encoder: VideoEncoderConfig | None = None,
        ring_slots: int | None = None,
        ring_budget_bytes: int = config.DEFAULT_RING_BUDGET_BYTES,
        overflow: Overflow = "backlog",
        backend: config.Backend | None = None,
        encoder_priority: priority.EncoderPriority = priority.DEFAULT_ENCODER_PRIORITY,
        backlog_bytes: int | None = None,
        stall_timeout_s: float = 5.0,
        robot_type: str | None = None,
        feature_names: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.root, self.fps = Path(root), config.check_fps(fps)
        if not cameras:
            raise ConfigError("cameras: expected at least one camera name -> (height, width, 3)")
        check_names(cameras, features or {})
        self.cameras = {name: tuple(int(x) for x in shape) for name, shape in cameras.items()}
        self.features = {n: tuple(int(x) for x in s) for n, s in (features or {}).items()}
        if overflow not in OVERFLOW_POLICIES:
            raise ConfigError(f"overflow: expected one of {OVERFLOW_POLICIES}, got {overflow!r}")
        self.backend = backend or config.backend_from_env()
        if self.backend not in config.BACKENDS:
            raise ConfigError(f"backend: expected one of {config.BACKENDS}, got {self.backend!r}")
        if not (isinstance(stall_timeout_s, int | float) and stall_timeout_s > 0):
            raise ConfigError(f"stall_timeout_s: expected seconds > 0, got {stall_timeout_s!r}")
        if backlog_bytes is not None and not (
            isinstance(backlog_bytes, int) and backlog_bytes >= 0
        ):
            raise ConfigError(f"backlog_bytes: expected bytes >= 0, got {backlog_bytes!r}")
        self.encoder = encoder or VideoEncoderConfig()
        self.overflow, self.ring_budget_bytes = overflow, ring_budget_bytes
        self.ring_slots = config.check_ring_slots(ring_slots)
        self.encoder_priority = priority.check(encoder_priority)
        self.stall_timeout_s = float(stall_timeout_s)
        self.backlog_bytes = (
            config.default_backlog_bytes() if backlog_bytes is None else backlog_bytes
        )
        self.robot_type, self.feature_names = robot_type, dict(feature_names or {})
        self._state = "new"  # new -> started -> closed
        self._token = names.new_token()
        self._busy = threading.Lock()  # one call at a time (see add_frame)
        self._stack = ExitStack()
        self._owner = [os.getpid()]  # the process that started it (set again by start())
        self._finalizer = weakref.finalize(self, _release, self._stack, self._owner)
        self._open = False
        self._restarts_at_open = 0

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> Pipeline:
        """Check every setting (the encoder is opened once at the real size), make the rings
        and start the workers; they live until close(). Nothing is written if this fails."""
        if self._state != "new":
            state = "already started" if self._state == "started" else "closed"
            raise UsageError(f"Pipeline.start(): the pipeline is {state}; make a new one")
        self._owner[0] = os.getpid()
        videos = {name: self._video_settings(shape) for name, shape in self.cameras.items()}
        minimum = max(codec_probe.min_ring_slots(v, self.encoder.g) for v in videos.values())
        self._size_rings(minimum)
        try:
            self._open_dataset()
            self._make_shared_memory()
            self._start_workers(videos)
        except BaseException:
            self._stack.close()
            raise
        self._fork_generation, self._state = _forks[0], "started"
        return self

    def _video_settings(self, shape: tuple[int, int, int]) -> VideoSettings:
        threads = config.encoder_threads(len(self.cameras))
        return VideoSettings(
            self.fps, shape[1], shape[0], self.encoder.vcodec, self.encoder.pix_fmt,
            self.encoder.codec_options(threads), self.encoder_priority,
            "process" if self.backend == "process" else "thread",
        )  # fmt: skip

    def _size_rings(self, minimum: int) -> None:
        if self.ring_slots is not None and self.ring_slots < minimum:
            raise ConfigError(
                f"ring_slots={self.ring_slots} is below the minimum of {minimum}: the encoder "
                "holds that many frames before they are safely on disk"
            )
        frame_bytes = max(h * w * c for h, w, c in self.cameras.values())
        self.ring_slots = self.ring_slots or config.ring_capacity(
            frame_bytes, self.fps, len(self.cameras), self.ring_budget_bytes, minimum
        )
        needed = sum(ring_bytes(self.ring_slots, s) for s in self.cameras.values())
        needed += StatsStore.size_for(len(self.cameras))
        if needed > shm_free_bytes():
            raise shm_shortage_error(needed, shm_free_bytes(), f"{len(self.cameras)} camera rings")

    def _open_dataset(self) -> None:
        self._dataset = DatasetWriter.open(
            self.root, self.fps, self.cameras, self.features, self.encoder.as_dict(),
            robot_type=self.robot_type, feature_names=self.feature_names or None,
        )  # fmt: skip
        self._stack.callback(self._dataset.close)
        # a resumed dataset fixes the column order of every later file
        self.cameras, self.features = dict(self._dataset.cameras), dict(self._dataset.features)
        self._rows = EpisodeRows(self.features)
        self._expected_keys = frozenset(self.cameras) | frozenset(self.features)

    def _make_shared_memory(self) -> None:
        names.sweep_dead_owners()
        pid, stack = os.getpid(), self._stack
        stack.callback(names.OwnerLock(pid, self._token).release)

        def ipc(what: str) -> str:
            return names.object_name(pid, self._token, what)

        self._stats_bell = Doorbell.create(ipc("bellstats"))
        stack.callback(self._stats_bell.close)
        self._store = StatsStore.create(ipc("stats"), len(self.cameras))
        stack.callback(self._store.close)
        budget = BacklogBudget(self.backlog_bytes)
        spill_dir = self.root / layout.SHMPIPE_DIR / "spill"
        self._feeds: dict[str, CameraFeed] = {}
        self._meters = {name: RateMeter() for name in self.cameras}
        for i, (name, shape) in enumerate(self.cameras.items()):
            ring = RingWriter.create(ipc(f"ring{i}"), self.ring_slots, shape)
            stack.callback(ring.close)  # (a feed closes it too; closing twice is harmless)
            bell = Doorbell.create(ipc(f"bell{i}"))
            stack.callback(bell.close)
            spill = spill_dir / f"{self._token}-{i}.raw"
            self._feeds[name] = CameraFeed(name, ring, bell, self._stats_bell, budget, spill)
            stack.callback(self._feeds[name].close)

    def _start_workers(self, videos: dict[str, VideoSettings]) -> None:
        owner = Owner(os.getpid(), self._token)
        sup = Supervisor(self.backend, self._heartbeat, self._wake_all, self.stall_timeout_s)
        self._stack.callback(sup.stop_all)
        for name, feed in self._feeds.items():
            sup.start("encoder", name, EncoderSpec(name, feed.ring.name, feed.bell.name, owner,
                                                   videos[name]))  # fmt: skip
        rings = [feed.ring.name for feed in self._feeds.values()]
        spec = StatsSpec(list(self.cameras), rings, self._stats_bell.name,
                         self._store._segment.name, owner, self.encoder_priority)  # fmt: skip
        sup.start("stats", STATS, spec)
        sup.await_ready()
        self._supervisor = sup

    def _heartbeat(self, label: str) -> tuple[int, bool]:
        if label == STATS:
            return sum(f.ring.heartbeat(STATS_READER)[0] for f in self._feeds.values()), False
        return self._feeds[label].ring.heartbeat(ENCODER_READER)

    def _wake_all(self) -> None:
        for feed in self._feeds.values():
            feed.bell.ring()
        self._stats_bell.ring()

    @property
    def next_episode_index(self) -> int:
        """The index the next (or the open) episode gets; known once start() opened the dataset."""
        return self._dataset.next_episode_index

    def close(self) -> None:
        """Stop the workers and remove all shared memory. An open episode is discarded, with a
        warning on the `shmpipe` logger naming it: only finish_episode() keeps frames."""
        if self._state == "closed":
            return
        if self._state == "started" and self._open and self._fork_generation == _forks[0]:
            log.warning("close(): episode %d discarded with its %d frames (finish_episode() "
                        "was not called)", self._dataset.next_episode_index,
                        self._rows.num_frames)  # fmt: skip
            try:
                self._cancel()
            except Exception as exc:
                log.warning("close(): cancelling the open episode failed: %s", exc)
        self._state = "closed"
        self._finalizer()

    def __enter__(self) -> Pipeline:
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- recording -------------------------------------------------------------------------
    def _enter(self, what: str) -> None:
        """Refuse calls in the wrong state, from a forked child, or from two threads at once."""
        if self._state != "started":
            hint = "call start() first" if self._state == "new" else "the pipeline is closed"
            raise UsageError(f"Pipeline.{what}(): {hint}")
        if self._fork_generation != _forks[0]:
            raise UsageError(f"Pipeline.{what}(): this pipeline belongs to the process that "
                             "started it, not to a forked child; start a new one here")  # fmt: skip
        if not self._busy.acquire(blocking=False):
            raise UsageError(f"Pipeline.{what}(): another call is running in another thread; "
                             "use a Pipeline from one thread at a time")  # fmt: skip

    def add_frame(self, frame: Mapping, task: str) -> None:
        """Add one time step: every camera image and feature value, and its task text. All or
        nothing: if this raises (bad input, Ctrl-C, out of memory), the frame is in no camera
        and no row, and the episode goes on."""
        self._enter("add_frame")
        try:
            if not isinstance(task, str) or not task:
                raise FrameError(f"task: expected a non-empty string, got {task!r}")
            frame_input.check_keys(frame, self._expected_keys)
            writers = {n: frame_input.frame_writer(n, frame[n], s) for n, s in self.cameras.items()}
            row = {n: frame_input.to_feature_row(n, frame[n], s) for n, s in self.features.items()}
            self._supervisor.supervise()
            if self.overflow != "backlog":
                self._make_room()
            if not self._open:
                self._open_episode()
            self._rows.reserve(self._rows.num_frames + 1)
            staged = {name: self._feeds[name].stage(w) for name, w in writers.items()}
            frame_index, now = self._rows.num_frames, time.time()
            with InterruptsDeferred():
                task_index = self._dataset.task_index(task)
                for name, feed in self._feeds.items():
                    feed.commit(staged[name], self._take, frame_index, now)
                self._rows.append(row, task_index)
            self._warn_if_behind()
        finally:
            self._busy.release()

    def _make_room(self) -> None:
        """For overflow 'block' or 'error': every ring must have a free slot before writing."""
        for name, feed in self._feeds.items():
            while feed.ring.claim() is None:
                if self.overflow == "error":
                    raise RingFullError(
                        f"camera {name!r}: ring full ({feed.ring.capacity} slots); the encoder is "
                        "behind (overflow='error'); the frame was not added"
                    )
                self._supervisor.supervise()
                time.sleep(0.001)

    def _open_episode(self) -> None:
        self._restarts_at_open = sum(self._supervisor.restarts.values())
        starts = {}
        for name, feed in self._feeds.items():
            feed.ring.reset_high_water()
            path = layout.video_path(self.root, name, self._dataset.next_episode_index)
            starts[name] = StartEpisode(take=0, video_path=str(path))
        self._take = self._supervisor.open_take(starts)
        self._open = True

    def _warn_if_behind(self) -> None:
        for name, feed in self._feeds.items():
            if feed.backlog and not feed.behind_warned:
                feed.behind_warned = True
                log.warning("camera %r: the encoder is %d frames behind (ring full); frames wait "
                            "in the backlog and finish_episode() will wait for them; see "
                            "status()", name, feed.ring.capacity)  # fmt: skip

    def _drain_all(self) -> None:
        for feed in self._feeds.values():
            if feed.backlog:
                feed.drain()

    # -- finishing and cancelling ----------------------------------------------------------
    def finish_episode(self) -> EpisodeResult:
        """Close the open episode: its videos, stats and rows are on disk on return. If it
        fails (a worker error, the disk), the episode is discarded and the error raised."""
        self._enter("finish_episode")
        try:
            return self._finish()
        finally:
            self._busy.release()

    def _finish(self) -> EpisodeResult:
        if not self._open or self._rows.num_frames == 0:
            raise UsageError("finish_episode(): no frames were added since the last episode")
        t0 = time.perf_counter()
        episode, n = self._dataset.next_episode_index, self._rows.num_frames
        try:
            done = self._supervisor.finish_take(n, self._drain_all)
        except BaseException:
            self._cancel()
            raise
        t_wait = time.perf_counter() - t0
        histograms = {n: self._store.tally(i).histogram for i, n in enumerate(self.cameras)}
        try:
            committed = self._dataset.commit_episode(episode, self._rows, histograms)
        except BaseException:
            self._cancel()
            raise
        timings = {"video_flush": t_wait,
                   "encoder_flush": max(done[name].flush_seconds for name in self.cameras),
                   **{k: committed.timings[k] for k in ("data", "stats", "meta")}}  # fmt: skip
        timings["total"] = time.perf_counter() - t0
        result = EpisodeResult(
            episode_index=episode,
            num_frames=n,
            videos={name: VideoSpan(done[name].path, 0.0, n / self.fps) for name in self.cameras},
            data=committed.data_path,
            stats=committed.stats,
            timings=timings,
            ring_high_water={name: feed.ring.high_water for name, feed in self._feeds.items()},
            overflow_count={name: feed.overflowed for name, feed in self._feeds.items()},
            tasks=committed.tasks,
            worker_restarts=sum(self._supervisor.restarts.values()) - self._restarts_at_open,
        )
        self._end_episode()
        return result

    def cancel_episode(self) -> None:
        """Discard the open episode: its frames are skipped and its partial files deleted."""
        self._enter("cancel_episode")
        try:
            if self._open:
                self._cancel()
        finally:
            self._busy.release()

    def _cancel(self) -> None:
        try:
            self._supervisor.cancel_take()
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
        self._enter("status")
        try:
            self._supervisor.supervise()
            cameras = {name: self._camera_status(name) for name in self.cameras}
            stats = self._supervisor.handles[STATS]
            rings = [feed.ring for feed in self._feeds.values()]
            return PipelineStatus(
                cameras=cameras,
                stats=StatsStatus(
                    stats.pid,
                    stats.alive(),
                    self._supervisor.stalled_s(STATS),
                    sum(r.released(STATS_READER) for r in rings),
                ),  # fmt: skip
                episode_index=self._dataset.next_episode_index if self._open else None,
                episode_frames=self._rows.num_frames,
            )
        finally:
            self._busy.release()

    def _camera_status(self, name: str) -> CameraStatus:
        feed, worker = self._feeds[name], self._supervisor.handles[name]
        written, encoded = feed.ring.write_seq, feed.ring.progress(ENCODER_READER)
        input_fps, encode_fps = self._meters[name].rates(written, encoded)
        behind = written + len(feed.backlog) - encoded
        wait = behind / encode_fps if encode_fps > 0 else (0.0 if behind == 0 else float("inf"))
        return CameraStatus(
            worker.pid, worker.alive(), self._supervisor.stalled_s(name), written, encoded,
            feed.ring.slots_used(), feed.ring.capacity, len(feed.backlog),
            feed.backlog_bytes(), feed.spilled, input_fps, encode_fps, wait,
        )  # fmt: skip


def _release(stack: ExitStack, owner: list[int]) -> None:
    """Free everything start() made, unless this is a forked child: the parent still uses it."""
    if os.getpid() == owner[0]:
        stack.close()
