"""The shared memory and workers of one started Pipeline, owned by one ExitStack.

`Session` makes the owner lock, the rings with their feeds, the stats store and the workers (and,
if asked, the preview worker), in that order, and the stack undoes them in reverse. Their sizes
come from shmpipe.recorder.sizing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import posix_ipc

from shmpipe import depth
from shmpipe.dataset.writer import CommittedEpisode
from shmpipe.errors import FrameError, RingFullError, WorkerError
from shmpipe.ipc import names
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.histogram_store import StatsStore
from shmpipe.ipc.ring import ENCODER_READER, STATS_READER, RingWriter
from shmpipe.ipc.segment import shm_creation_error
from shmpipe.messages import EncoderSpec, Owner, StartEpisode, StatsSpec
from shmpipe.recorder.camera_feed import BacklogBudget, CameraFeed
from shmpipe.recorder.preview import PreviewConfig, PreviewWorker
from shmpipe.recorder.rate_meter import RateMeter
from shmpipe.recorder.results import (
    CameraStatus,
    EpisodeResult,
    PipelineStatus,
    StatsStatus,
    VideoSpan,
)
from shmpipe.recorder.sizing import histogram_shapes
from shmpipe.recorder.supervisor import Supervisor
from shmpipe.recorder.worker_handle import STATS_WORKER, WorkerRole, encoder_for
from shmpipe.system import priority
from shmpipe.video import codecs
from shmpipe.video.settings import VideoSettings

log = logging.getLogger("shmpipe")


class Session:
    def __init__(self, stack: ExitStack, cameras: dict[str, tuple[int, int, int]],
                 videos: dict[str, VideoSettings], ring_slots: int, backlog_bytes: int,
                 spill_dir: Path, backend: str, stall_timeout_s: float,
                 control_priority: int | None, preview: PreviewConfig | None = None,
                 features: Mapping[str, tuple[int, ...]] | None = None) -> None:  # fmt: skip
        try:
            self._make_shared_memory(stack, cameras, ring_slots, backlog_bytes, spill_dir)
        except (OSError, posix_ipc.Error) as exc:  # a read-only /dev/shm, or out of inodes
            raise shm_creation_error(exc) from exc
        self.supervisor = Supervisor(backend, self._heartbeat, self.wake_all, stall_timeout_s,
                                     self._unreleased)  # fmt: skip
        stack.callback(self.supervisor.close)  # the watchdog stops before the rings go
        self.videos = videos
        self._start_workers(videos)
        self.preview = None  # started last, stopped first; nothing waits for it
        if preview is not None:
            rings = {name: feed.ring.name for name, feed in self.feeds.items()}
            self.preview = PreviewWorker(stack, preview, rings, features or {}, self._owner,
                                         self._ipc, backend)  # fmt: skip
        self.control_raised = False
        if control_priority is not None:
            saved = priority.raise_control_thread(control_priority)
            self.control_raised = saved is not None
            if saved is None:
                log.info("the control thread stays at normal priority (SCHED_FIFO not permitted)")
            else:
                stack.callback(priority.restore_thread, saved)

    def _make_shared_memory(self, stack: ExitStack, cameras: dict[str, tuple[int, int, int]],
                            ring_slots: int, backlog_bytes: int,
                            spill_dir: Path) -> None:  # fmt: skip
        """The owner lock, then the stats block and every camera's ring, doorbell and feed."""
        names.sweep_dead_owners()
        self._owner = Owner(os.getpid(), names.new_token())
        stack.callback(names.OwnerLock(self._owner.pid, self._owner.token).release)
        self.stats_bell = self._own(stack, Doorbell.create(self._ipc("bellstats")))
        self.store = self._own(
            stack, StatsStore.create(self._ipc("stats"), len(cameras), histogram_shapes(cameras))
        )
        budget = BacklogBudget(backlog_bytes)
        self.feeds: dict[str, CameraFeed] = {}
        self._meters = {name: RateMeter() for name in cameras}
        for i, (name, shape) in enumerate(cameras.items()):
            ring = RingWriter.create(
                self._ipc(f"ring{i}"), ring_slots, shape, depth.dtype_of(shape)
            )
            self._own(stack, ring)
            bell = self._own(stack, Doorbell.create(self._ipc(f"bell{i}")))
            spill = spill_dir / f"{self._owner.token}-{i}.raw"
            feed = CameraFeed(name, ring, bell, self.stats_bell, budget, spill)
            self.feeds[name] = self._push(stack, feed)  # closing twice is harmless
        self._rings = [feed.ring for feed in self.feeds.values()]

    @property
    def encoder_choice(self) -> codecs.EncoderChoice:
        """The encoder start() opened and, for vcodec "auto", why it skipped those before it."""
        first = next(iter(self.videos.values())).vcodec
        return getattr(self.videos, "choice", None) or codecs.EncoderChoice(first)

    def _ipc(self, what: str) -> str:
        return names.object_name(self._owner.pid, self._owner.token, what)

    @staticmethod
    def _push(stack: ExitStack, thing):
        stack.callback(thing.close)
        return thing

    @staticmethod
    def _own(stack: ExitStack, thing):
        """A shared object this process made: at exit it is closed, then its name is removed
        (unlink: the creator's call, once; ipc.segment)."""
        stack.callback(thing.unlink)
        return Session._push(stack, thing)

    def _start_workers(self, videos: dict[str, VideoSettings]) -> None:
        for name, feed in self.feeds.items():
            spec = EncoderSpec(name, feed.ring.name, feed.bell.name, self._owner, videos[name])
            self.supervisor.start(encoder_for(name), spec)
        rings = [feed.ring.name for feed in self.feeds.values()]
        priority = next(iter(videos.values())).priority
        bells = [feed.bell.name for feed in self.feeds.values()]
        spec = StatsSpec(list(self.feeds), rings, self.stats_bell.name,
                         self.store.name, self._owner, priority, bells)  # fmt: skip
        self.supervisor.start(STATS_WORKER, spec)
        self.supervisor.await_ready()

    def _heartbeat(self, role: WorkerRole) -> tuple[int, bool]:
        if role == STATS_WORKER:
            return sum(f.ring.heartbeat(STATS_READER)[0] for f in self.feeds.values()), False
        return self.feeds[role.camera].ring.heartbeat(ENCODER_READER)

    def _unreleased(self, role: WorkerRole) -> int:
        """Frames the worker read but did not release: its replacement reads them again."""
        if role == STATS_WORKER:
            rings = [f.ring for f in self.feeds.values()]
            return sum(r.progress(STATS_READER) - r.released(STATS_READER) for r in rings)
        ring = self.feeds[role.camera].ring
        return ring.progress(ENCODER_READER) - ring.released(ENCODER_READER)

    def wake_all(self) -> None:
        for feed in self.feeds.values():
            feed.bell.ring()
        self.stats_bell.ring()

    def wake_readers(self) -> None:
        """After add_frame published a frame in every ring: the stats worker's doorbell if it
        sleeps (only after a quiet second: while frames come it polls, workers/stats.py); it
        reads every ring and rings the encoders that sleep (an encoder it fails to wake wakes
        at its timeout)."""
        asleep = False
        for ring in self._rings:
            asleep |= ring.wake_needed(STATS_READER)
        if asleep:
            self.stats_bell.ring()

    def status(self, episode: int | None, episode_frames: int) -> PipelineStatus:
        self.supervisor.supervise()
        cameras = {name: self._camera_status(name) for name in self.feeds}
        choice = self.encoder_choice
        preview = self.preview.status() if self.preview is not None else None
        return PipelineStatus(cameras, self._stats_status(), episode, episode_frames,
                              choice.encoder, list(choice.notes), preview,
                              getattr(self.videos, "capacity", None))  # fmt: skip

    def _camera_status(self, name: str) -> CameraStatus:
        feed, worker = self.feeds[name], self.supervisor.handles[encoder_for(name)]
        written, encoded = feed.ring.write_seq, feed.ring.progress(ENCODER_READER)
        added = written + len(feed.backlog)  # into the ring or waiting for it
        rates = self._meters[name].rates(added, encoded)
        stalled_s = self.supervisor.stalled_s(encoder_for(name))
        return CameraStatus(
            worker.pid, worker.alive(), stalled_s, written, encoded,
            feed.ring.slots_used(), feed.ring.capacity, len(feed.backlog),
            feed.backlog_bytes(), feed.spilled, *rates,
            self.supervisor.failures.message_of(encoder_for(name)),
        )  # fmt: skip

    def _stats_status(self) -> StatsStatus:
        worker = self.supervisor.handles[STATS_WORKER]
        seen = sum(feed.ring.released(STATS_READER) for feed in self.feeds.values())
        stalled_s = self.supervisor.stalled_s(STATS_WORKER)
        error = self.supervisor.failures.message_of(STATS_WORKER)
        return StatsStatus(worker.pid, worker.alive(), stalled_s, seen, error)

    def publish_row(self, row: Mapping[str, np.ndarray], take: int, frame_index: int) -> None:
        """For the preview only (a few stores); nothing when it is off."""
        if self.preview is not None:
            self.preview.publish_row(row, take, frame_index)

    def histograms(self) -> dict[str, np.ndarray]:
        """The open episode's per-camera pixel counts ((3, 256) RGB, (1, 4096) depth codes), as
        the stats worker committed."""
        return {name: self.store.tally(i).histogram for i, name in enumerate(self.feeds)}

    def open_episode(self, video_path, episode: int) -> int:
        """Tell the workers a new take begins (each encoder: where its video goes); its number."""
        starts = {}
        for name, feed in self.feeds.items():
            feed.ring.reset_high_water()
            self._meters[name].restart(feed.ring.write_seq + len(feed.backlog),
                                       feed.ring.progress(ENCODER_READER))  # fmt: skip
            path = str(video_path(name, episode))
            starts[encoder_for(name)] = StartEpisode(take=0, video_path=path)
        return self.supervisor.open_take(starts)

    def loan(self, camera: str) -> np.ndarray:
        if camera not in self.feeds:
            raise FrameError(f"loan: unknown camera {camera!r}; cameras: {list(self.feeds)}")
        return self.feeds[camera].loan()

    def make_room(self, refuse: bool) -> None:
        """For overflow 'block' or 'error' (`refuse`): every ring must have a free slot."""
        for name, feed in self.feeds.items():
            while feed.ring.claim() is None:
                if refuse:
                    raise RingFullError(
                        f"camera {name!r}: ring full ({feed.ring.capacity} slots); the encoder is "
                        "behind (overflow='error'); the frame was not added"
                    )
                self.supervisor.supervise()
                time.sleep(0.001)

    def warn_if_behind(self) -> None:
        """One warning per camera and episode, when its frames start to wait in the backlog."""
        for name, feed in self.feeds.items():
            if feed.backlog and not feed.behind_warned:
                feed.behind_warned = True
                log.warning("camera %r: the encoder is %d frames behind (its ring is full); frames "
                            "wait in the backlog and finish_episode() will wait for them; see "
                            "status()", name, feed.ring.capacity)  # fmt: skip

    def check_frame_counts(self, rows: int, episode: int) -> None:
        """Every camera holds one frame per row, or the workers would wait for frames that
        cannot come: say so at once (the episode is then discarded)."""
        counts = {name: feed.frames for name, feed in self.feeds.items()}
        if any(count != rows for count in counts.values()):
            raise WorkerError(
                f"finish_episode(): episode {episode} has {rows} rows but camera frames "
                f"{counts}; it cannot be saved whole and is discarded"
            )

    def drain_all(self) -> None:
        for feed in self.feeds.values():
            if feed.backlog:
                feed.drain()


def episode_result(session: Session, committed: CommittedEpisode, done: dict, waited: float,
                   started: float) -> EpisodeResult:  # fmt: skip
    """What finish_episode returns; `done` has every encoder's EpisodeDone."""
    n, fps = committed.length, next(iter(session.videos.values())).fps
    done = {name: done[encoder_for(name)] for name in session.feeds}
    steps = {k: committed.timings[k] for k in ("data", "stats", "meta", "commit")}
    timings = {"video_flush": waited,
               "encoder_flush": max(d.flush_seconds for d in done.values()), **steps}  # fmt: skip
    timings["total"] = time.perf_counter() - started
    timings["after_flush"] = timings["total"] - waited
    return EpisodeResult(
        episode_index=committed.episode_index,
        num_frames=n,
        videos={name: VideoSpan(str(committed.videos[name]), 0.0, n / fps) for name in done},
        data=committed.data_path,
        stats=committed.stats,
        timings=timings,
        ring_high_water={name: feed.ring.high_water for name, feed in session.feeds.items()},
        overflow_count={name: feed.overflowed for name, feed in session.feeds.items()},
        tasks=committed.tasks,
        worker_restarts=session.supervisor.take_restarts,
    )
