"""The recording pipeline as the control loop sees it: start, add frames, finish or cancel.

`add_frame` checks the whole frame first, then copies each camera image once into its ring (or,
if the ring is full, into the overflow backlog) and returns; it never waits for a worker.
`finish_episode` tells the workers how many frames the episode has, waits for the encoders' own
flush and the stats worker, writes the numeric rows, commits the episode to the LeRobot v3.0
dataset at `root` and returns what was recorded. Dead workers are restarted on the way.
"""

from __future__ import annotations

import math
import os
import time
import weakref
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from shmpipe import config, frame_input, layout, messages, names
from shmpipe.config import VideoEncoderConfig
from shmpipe.dataset import DatasetWriter
from shmpipe.doorbell import Doorbell
from shmpipe.episode_rows import EpisodeRows, rows_table, write_parquet_atomically
from shmpipe.results import CameraStatus, EpisodeResult, PipelineStatus, StatsStatus
from shmpipe.ring import ENCODER_READER, STATS_READER, FrameRing
from shmpipe.stats_store import StatsStore
from shmpipe.worker_pool import WorkerPool

OVERFLOW_POLICIES = ("backlog", "block", "error")
STATS = "stats"  # the stats worker's label; encoders are labelled by camera
STALL_TIMEOUT_S = 60.0  # finish gives up only if no worker makes progress for this long
CANCEL_TIMEOUT_S = 10.0
MAX_SPARE_BUFFERS = 32  # per camera


class _Resources:
    """Everything that must be released even if the Pipeline object is simply dropped."""

    def __init__(self) -> None:
        self.pool: WorkerPool | None = None
        self.dataset: DatasetWriter | None = None
        self.rings: list[FrameRing] = []
        self.doorbells: list[Doorbell] = []
        self.store: StatsStore | None = None

    def release(self) -> None:
        if self.pool is not None:
            self.pool.stop_all()
        for ring in self.rings:
            ring.close()
        for bell in self.doorbells:
            bell.close()
        if self.store is not None:
            self.store.close()
        if self.dataset is not None:
            self.dataset.close()
        self.pool, self.rings, self.doorbells, self.store = None, [], [], None
        self.dataset = None


class _Backlogged:
    """A frame that found its ring full: a private copy waiting for a free slot."""

    __slots__ = ("frame", "take", "episode", "frame_index", "capture_time")

    def __init__(self, frame, take, episode, frame_index, capture_time):
        self.frame = frame
        self.take = take
        self.episode = episode
        self.frame_index = frame_index
        self.capture_time = capture_time


class Pipeline:
    """Records episodes of several cameras (and numeric features) under `root`.

    cameras: name -> (height, width, 3), RGB uint8 frames.
    features: name -> shape of a float32 vector (e.g. observation.state, action).
    ring_slots: slots per camera ring (default: a share of `ring_budget_bytes`, >= 1 s).
    overflow: what add_frame does when a ring is full: "backlog" (default; keep a copy and
    hand it over when a slot frees, nothing is dropped and nothing waits), "block" (wait for a
    slot) or "error" (raise, the frame is not added).
    backend: "process" or "thread"; default from $SHMPIPE_BACKEND, else "process".
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
        overflow: str = "backlog",
        backend: str | None = None,
    ) -> None:
        if not isinstance(fps, int) or fps <= 0:
            raise ValueError(f"fps: expected a positive integer, got {fps!r}")
        if not cameras:
            raise ValueError("cameras: expected at least one camera name -> (height, width, 3)")
        for name, shape in cameras.items():
            if len(shape) != 3 or shape[2] != 3 or min(shape) <= 0:
                raise ValueError(f"camera {name!r}: expected shape (height, width, 3), got {shape}")
        features = dict(features or {})
        overlap = set(features) & set(cameras)
        if overlap:
            raise ValueError(f"names used both as camera and feature: {sorted(overlap)}")
        reserved = set(features) & {
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index",
        }
        if reserved:
            raise ValueError(
                f"feature names reserved for LeRobot's index columns: {sorted(reserved)}"
            )
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow: expected one of {OVERFLOW_POLICIES}, got {overflow!r}")
        self.root = Path(root)
        self.fps = fps
        self.cameras = {name: tuple(int(x) for x in shape) for name, shape in cameras.items()}
        self.features = {name: tuple(int(x) for x in shape) for name, shape in features.items()}
        self.encoder = encoder or VideoEncoderConfig()
        self.backend = backend or config.backend_from_env()
        if self.backend not in config.BACKENDS:
            raise ValueError(f"backend: expected one of {config.BACKENDS}, got {self.backend!r}")
        self.overflow = overflow
        frame_bytes = max(math.prod(s) for s in self.cameras.values())
        self.ring_slots = ring_slots or config.ring_capacity(
            frame_bytes, fps, len(self.cameras), ring_budget_bytes
        )
        self._state = "new"  # new -> started -> closed
        self._res = _Resources()
        self._finalizer = weakref.finalize(self, self._res.release)
        self._token = names.new_token()
        self._rows = EpisodeRows(self.features)
        self._backlogs = {name: deque() for name in self.cameras}
        # drained backlog buffers, reused: a fresh large array costs page faults per frame
        self._spare_buffers: dict[str, list[np.ndarray]] = {name: [] for name in self.cameras}
        self._overflowed = dict.fromkeys(self.cameras, 0)
        self._dataset: DatasetWriter | None = None
        self.next_episode_index = 0  # known once start() has opened the dataset
        self.next_frame_index = 0  # dataset-wide `index` of the next episode's first row
        self._take = 0  # numbers every opened episode; see shmpipe.ring
        self._open = False
        self._finishing: int | None = None  # frames of the take being finished
        self._restarts_at_open = 0
        self._pool = WorkerPool(self.backend, self._replay_episode)
        self._res.pool = self._pool

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> Pipeline:
        """Create the rings and start the workers; they live until close()."""
        if self._state == "started":
            raise RuntimeError("Pipeline.start(): already started")
        if self._state == "closed":
            raise RuntimeError("Pipeline.start(): this pipeline was closed; make a new one")
        names.sweep_dead_owners()
        _remove_unfinished_files(self.root)
        dataset = DatasetWriter.open(
            self.root, self.fps, self.cameras, self.features, self.encoder.as_dict()
        )
        self._res.dataset = self._dataset = dataset
        # a resumed dataset fixes the column order of every later file
        self.cameras, self.features = dict(dataset.cameras), dict(dataset.features)
        self._rows = EpisodeRows(self.features)
        self._expected_keys = frozenset(self.cameras) | frozenset(self.features)
        self.next_episode_index = dataset.next_episode_index
        self.next_frame_index = dataset.next_frame_index
        try:
            self._create_shared_memory()
            self._start_workers()
        except BaseException:
            self._res.release()
            raise
        self._state = "started"
        return self

    def _ipc_name(self, what: str) -> str:
        return names.object_name(os.getpid(), self._token, what)

    def _create_shared_memory(self) -> None:
        res = self._res
        self._rings, self._bells = {}, {}
        for i, (name, shape) in enumerate(self.cameras.items()):
            self._rings[name] = FrameRing.create(self._ipc_name(f"ring{i}"), self.ring_slots, shape)
            res.rings.append(self._rings[name])
            self._bells[name] = Doorbell.create(self._ipc_name(f"bell{i}"))
            res.doorbells.append(self._bells[name])
        self._stats_bell = Doorbell.create(self._ipc_name("bellstats"))
        res.doorbells.append(self._stats_bell)
        res.store = StatsStore.create(self._ipc_name("stats"), len(self.cameras))

    def _start_workers(self) -> None:
        threads = config.encoder_threads(len(self.cameras))
        options = self.encoder.codec_options(threads)
        for name, ring in self._rings.items():
            spec = messages.EncoderSpec(
                camera=name,
                ring_name=ring.name,
                doorbell_name=self._bells[name].name,
                owner_pid=os.getpid(),
                owner_token=self._token,
                fps=self.fps,
                vcodec=self.encoder.vcodec,
                pix_fmt=self.encoder.pix_fmt,
                codec_options=options,
                demote="all" if self.backend == "process" else "new",
            )
            self._pool.start("encoder", name, spec)
        spec = messages.StatsSpec(
            cameras=list(self.cameras),
            ring_names=[r.name for r in self._rings.values()],
            doorbell_name=self._stats_bell.name,
            store_name=self._res.store._segment.name,
            owner_pid=os.getpid(),
            owner_token=self._token,
        )
        self._pool.start("stats", STATS, spec)
        self._pool.await_all_ready()

    def _replay_episode(self, label: str) -> None:
        """A worker was restarted: tell it about the take in progress, as the old one knew."""
        if not self._open:
            return
        if label != STATS:
            self._pool.send(label, self._start_message(label))
        if self._finishing is not None:
            self._pool.send(
                label, messages.FinishEpisode(take=self._take, num_frames=self._finishing)
            )
        self._ring_all()

    def _start_message(self, camera: str) -> messages.StartEpisode:
        path = layout.video_path(self.root, camera, self.next_episode_index)
        return messages.StartEpisode(
            take=self._take, episode=self.next_episode_index, video_path=str(path)
        )

    def close(self) -> None:
        """Discard an open episode, stop the workers and remove all shared memory."""
        if self._state == "closed":
            return
        if self._state == "started" and self._open:
            try:
                self.cancel_episode()
            except Exception:
                self._discard_episode()
        self._state = "closed"
        self._finalizer()

    def __enter__(self) -> Pipeline:
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- recording -------------------------------------------------------------------------
    def _require_started(self, what: str) -> None:
        if self._state == "new":
            raise RuntimeError(f"Pipeline.{what}(): call start() first")
        if self._state == "closed":
            raise RuntimeError(f"Pipeline.{what}(): the pipeline is closed")

    def add_frame(self, frame: Mapping, task: str) -> None:
        """Add one time step: every camera image and every feature value, and its task text."""
        self._require_started("add_frame")
        if not isinstance(task, str) or not task:
            raise ValueError(f"task: expected a non-empty string, got {task!r}")
        frame_input.check_keys(frame, self._expected_keys)
        layouts = {
            name: frame_input.camera_layout(name, frame[name], shape)
            for name, shape in self.cameras.items()
        }
        row = {
            name: frame_input.to_feature_row(name, frame[name], shape)
            for name, shape in self.features.items()
        }
        self._pool.supervise()
        if self.overflow != "backlog":
            self._make_room()
        if not self._open:
            self._open_episode()
        frame_index = self._rows.num_frames
        now = time.time()
        for name in self.cameras:
            self._put(name, frame[name], layouts[name], frame_index, now)
        task_index = self._dataset.task_index(task)
        self._rows.append(row, task_index)

    def _make_room(self) -> None:
        """For overflow 'block' or 'error': make sure every ring has a slot before writing."""
        for name, ring in self._rings.items():
            if ring.claim_slot() is not None:
                continue
            if self.overflow == "error":
                raise RuntimeError(
                    f"camera {name!r}: ring full ({ring.capacity} slots); the encoder is behind"
                    " (overflow='error'); the frame was not added"
                )
            while ring.claim_slot() is None:
                self._pool.supervise()
                time.sleep(0.001)

    def _open_episode(self) -> None:
        self._restarts_at_open = sum(self._pool.restarts.values())
        self._take += 1
        self._open = True
        for name, ring in self._rings.items():
            ring.reset_high_water()
            self._overflowed[name] = 0
            self._pool.send(name, self._start_message(name))

    def _put(self, name: str, image: np.ndarray, how: str, frame_index: int, now: float) -> None:
        ring, backlog = self._rings[name], self._backlogs[name]
        if backlog:
            self._drain(name)
        slot = None if backlog else ring.claim_slot()
        if slot is None:
            spares = self._spare_buffers[name]
            copy = spares.pop() if spares else np.empty(self.cameras[name], np.uint8)
            frame_input.write_frame(image, how, copy)
            backlog.append(_Backlogged(copy, self._take, self.next_episode_index, frame_index, now))
            self._overflowed[name] += 1
            return
        frame_input.write_frame(image, how, slot)
        ring.publish(self._take, self.next_episode_index, frame_index, now)
        self._wake_readers(name)

    def _drain(self, name: str) -> int:
        """Move backlogged frames into free slots, oldest first; returns how many moved."""
        ring, backlog = self._rings[name], self._backlogs[name]
        moved = 0
        while backlog:
            slot = ring.claim_slot()
            if slot is None:
                break
            item = backlog.popleft()
            np.copyto(slot, item.frame)
            ring.publish(item.take, item.episode, item.frame_index, item.capture_time)
            if len(self._spare_buffers[name]) < MAX_SPARE_BUFFERS:
                self._spare_buffers[name].append(item.frame)
            moved += 1
        if moved:
            self._wake_readers(name)
        return moved

    def _wake_readers(self, name: str) -> None:
        """Ring the doorbells of the camera's readers that sleep (a busy one sees new frames)."""
        ring = self._rings[name]
        if ring.wake_needed(ENCODER_READER):
            self._bells[name].ring()
        if ring.wake_needed(STATS_READER):
            self._stats_bell.ring()

    # -- finishing -------------------------------------------------------------------------
    def finish_episode(self) -> EpisodeResult:
        """Close the open episode: its videos, stats and numeric rows are on disk on return."""
        self._require_started("finish_episode")
        if not self._open or self._rows.num_frames == 0:
            raise RuntimeError("finish_episode(): no frames were added since the last episode")
        t0 = time.perf_counter()
        take, n = self._take, self._rows.num_frames
        episode = self.next_episode_index
        self._finishing = n
        self._pool.broadcast(messages.FinishEpisode(take=take, num_frames=n))
        self._ring_all()
        try:
            done = self._await_workers(take)
        except BaseException:
            self._cancel_in_workers(take)
            self._discard_episode()
            raise
        finally:
            self._finishing = None
        t_video = max(done[name].flush_seconds for name in self.cameras)
        t_wait = time.perf_counter() - t0

        t1 = time.perf_counter()
        data_path = layout.data_path(self.root, episode)
        columns = self._rows.columns(self.fps, episode, self.next_frame_index)
        histograms = {n: self._res.store.tally(i).histogram for i, n in enumerate(self.cameras)}
        try:
            write_parquet_atomically(rows_table(columns, self._rows.features), data_path)
            t2 = time.perf_counter()
            committed = self._dataset.commit_episode(episode, columns, histograms)
        except BaseException:
            self._dataset.discard_episode(episode)
            self._discard_episode()
            raise
        t_data = t2 - t1

        duration = n / self.fps
        result = EpisodeResult(
            episode_index=episode,
            num_frames=n,
            videos={name: (done[name].path, 0.0, duration) for name in self.cameras},
            data=str(data_path),
            stats=committed.stats,
            timings={
                "video_flush": t_wait,
                "encoder_flush": t_video,
                "data": t_data,
                "stats": committed.timings["stats"],
                "meta": committed.timings["total"] - committed.timings["stats"],
                "total": time.perf_counter() - t0,
            },
            ring_high_water={name: ring.high_water for name, ring in self._rings.items()},
            overflow_count=dict(self._overflowed),
            tasks=committed.tasks,
            worker_restarts=sum(self._pool.restarts.values()) - self._restarts_at_open,
        )
        self.next_episode_index = self._dataset.next_episode_index
        self.next_frame_index = self._dataset.next_frame_index
        self._open = False
        self._rows.clear()
        return result

    def _ring_all(self) -> None:
        for bell in self._res.doorbells:
            bell.ring()

    def _await_workers(self, take: int) -> dict[str, messages.EpisodeDone]:
        """Feed backlogs into the rings and collect every worker's EpisodeDone for `take`,
        restarting any worker that dies meanwhile."""
        waiting = set(self._pool.handles)
        done: dict[str, messages.EpisodeDone] = {}
        last_progress, progress_mark = time.monotonic(), None
        while waiting:
            for name in self.cameras:
                if self._backlogs[name]:
                    self._drain(name)
            self._pool.supervise()
            for label, reply in self._pool.replies(sorted(waiting), 0.005):
                if isinstance(reply, messages.WorkerFailed) and reply.take == take:
                    raise RuntimeError(f"{_describe(label)}: {reply.error}")
                if isinstance(reply, messages.EpisodeDone) and reply.take == take:
                    done[label] = reply
                    waiting.discard(label)
            mark = tuple(
                r.released(ENCODER_READER) + r.released(STATS_READER) for r in self._res.rings
            )
            if mark != progress_mark:
                progress_mark, last_progress = mark, time.monotonic()
            elif time.monotonic() - last_progress > STALL_TIMEOUT_S:
                raise RuntimeError(
                    f"finish_episode(): no progress for {STALL_TIMEOUT_S:.0f} s from "
                    f"{sorted(waiting)}"
                )
        return done

    # -- cancelling ------------------------------------------------------------------------
    def cancel_episode(self) -> None:
        """Discard the open episode: its frames are skipped and its partial files deleted."""
        self._require_started("cancel_episode")
        if not self._open:
            return
        take = self._take
        try:
            self._cancel_in_workers(take)
        finally:
            self._discard_episode()

    def _cancel_in_workers(self, take: int) -> None:
        """Every worker drops `take`. A worker restarted meanwhile never heard of it (it skips
        frames of takes it was not told about), so its answer is not awaited."""
        self._pool.broadcast(messages.CancelEpisode(take=take))
        self._ring_all()
        waiting = set(self._pool.handles)
        restarts = dict(self._pool.restarts)
        deadline = time.monotonic() + CANCEL_TIMEOUT_S
        while waiting and time.monotonic() < deadline:
            self._pool.supervise()
            for label, reply in self._pool.replies(sorted(waiting), 0.05):
                if isinstance(reply, messages.EpisodeCancelled) and reply.take == take:
                    waiting.discard(label)
            waiting -= {
                label for label, n in self._pool.restarts.items() if n != restarts.get(label)
            }
        # whatever a worker killed meanwhile left of the take (its successor never heard of it)
        self._dataset.discard_episode(self.next_episode_index)
        if waiting:
            raise RuntimeError(f"cancel_episode(): no answer from {sorted(waiting)}")

    def _discard_episode(self) -> None:
        for name in self.cameras:
            self._backlogs[name].clear()
        self._rows.clear()
        self._open = False

    # -- status ----------------------------------------------------------------------------
    def status(self) -> PipelineStatus:
        """Live figures read from shared counters; cheap enough for a progress display."""
        self._require_started("status")
        cameras = {}
        self._pool.supervise()
        for name, ring in self._rings.items():
            worker = self._pool.handles[name]
            cameras[name] = CameraStatus(
                worker_pid=worker.pid,
                alive=worker.alive(),
                frames_written=ring.write_seq,
                frames_encoded=ring.progress(ENCODER_READER),
                slots_used=ring.slots_used(),
                slots_total=ring.capacity,
                backlog=len(self._backlogs[name]),
            )
        stats_worker = self._pool.handles[STATS]
        stats = StatsStatus(
            worker_pid=stats_worker.pid,
            alive=stats_worker.alive(),
            frames_seen=sum(r.released(STATS_READER) for r in self._rings.values()),
        )
        return PipelineStatus(
            cameras=cameras,
            stats=stats,
            episode_index=self.next_episode_index if self._open else None,
            episode_frames=self._rows.num_frames,
        )


def _remove_unfinished_files(root: Path) -> None:
    """Delete what a killed run left half-written: video segments and temporary files are
    never part of a finished episode (those are written under a temporary name, then renamed)."""
    for pattern in ("videos/**/*.partial*", "videos/**/*.joining", "data/**/*.partial"):
        for path in root.glob(pattern):
            path.unlink(missing_ok=True)


def _describe(label: str) -> str:
    return "stats worker" if label == STATS else f"encoder worker for camera {label!r}"
