"""The shared memory and workers of one started Pipeline, owned by one ExitStack.

`Session` makes the owner lock, the rings with their feeds, the stats store and the workers (and,
if asked, the preview worker), in that order, and the stack undoes them in reverse: each object
is closed once, by the stack (a feed closes its spill file, not its ring or doorbells). Their
sizes come from shmpipe.recorder.sizing. The session holds no episode state: the open take
(shmpipe.recorder.take) is handed to each call that needs it; `live` only says which takes the
workers know of (shmpipe.recorder.live), for their replies and replays. `lock` makes one owner
at a time of the rings' writing side, the backlog and the workers' channels: add_frame holds it,
and a commit running in the background (shmpipe.recorder.committer) holds it while it feeds
backlogged frames and reads replies, never while it waits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import posix_ipc

from shmpipe import depth
from shmpipe.errors import FrameError, RingFullError
from shmpipe.ipc import names
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.histogram_store import StatsStore
from shmpipe.ipc.ring import ENCODER_READER, STATS_READER, RingWriter
from shmpipe.ipc.segment import shm_creation_error
from shmpipe.messages import EncoderSpec, EpisodeDone, Owner, StatsSpec
from shmpipe.recorder.camera_feed import BacklogBudget, CameraFeed
from shmpipe.recorder.live import LiveTakes
from shmpipe.recorder.preview import PreviewConfig, PreviewWorker
from shmpipe.recorder.results import CameraStatus, PipelineStatus, StatsStatus
from shmpipe.recorder.rolling import Roll, RollPlan
from shmpipe.recorder.sizing import histogram_shapes
from shmpipe.recorder.supervisor import Supervisor
from shmpipe.recorder.take import LIVE, Take, VideoPath
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
                 features: Mapping[str, tuple[int, ...]] | None = None,
                 roll: RollPlan | None = None) -> None:  # fmt: skip
        self.roll = roll  # rolling capture's plan, or None
        try:
            self._make_shared_memory(stack, cameras, ring_slots, backlog_bytes, spill_dir)
        except (OSError, posix_ipc.Error) as exc:  # a read-only /dev/shm, or out of inodes
            raise shm_creation_error(exc) from exc
        self.lock = threading.RLock()
        self.live = LiveTakes()
        self.closing = False  # close() began: a commit still waiting gives up
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
        snapshots = self.roll.snapshots if self.roll is not None else 0
        self.store = self._own(stack, StatsStore.create(
            self._ipc("stats"), len(cameras), histogram_shapes(cameras), snapshots))  # fmt: skip
        budget = BacklogBudget(backlog_bytes)
        self.feeds: dict[str, CameraFeed] = {}
        for i, (name, shape) in enumerate(cameras.items()):
            ring = RingWriter.create(
                self._ipc(f"ring{i}"), ring_slots, shape, depth.dtype_of(shape)
            )
            self._own(stack, ring)
            bell = self._own(stack, Doorbell.create(self._ipc(f"bell{i}")))
            spill = spill_dir / f"{self._owner.token}-{i}.raw"
            feed = CameraFeed(name, ring, bell, self.stats_bell, budget, spill)
            self.feeds[name] = self._push(stack, feed)  # closed before its ring and doorbell
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
        roll = (self.roll.segment, self.roll.snapshots) if self.roll is not None else (0, 0)
        spec = StatsSpec(list(self.feeds), rings, self.stats_bell.name,
                         self.store.name, self._owner, priority, bells, *roll)  # fmt: skip
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

    def status(self, take: Take) -> PipelineStatus:
        """Live figures; the episode's are `take`'s (none while it is idle)."""
        self.supervisor.supervise(self.live)
        cameras = {name: self._camera_status(name, take) for name in self.feeds}
        choice = self.encoder_choice
        preview = self.preview.status() if self.preview is not None else None
        episode = take.episode if take.state in LIVE else None
        return PipelineStatus(cameras, self._stats_status(take), episode, take.frames,
                              choice.encoder, list(choice.notes), preview,
                              getattr(self.videos, "capacity", None))  # fmt: skip

    def _camera_status(self, name: str, take: Take) -> CameraStatus:
        feed, worker = self.feeds[name], self.supervisor.handles[encoder_for(name)]
        written, encoded = feed.ring.write_seq, feed.encoded()
        rates = take.counts.rates(feed, encoded)
        stalled_s = self.supervisor.stalled_s(encoder_for(name))
        return CameraStatus(
            worker.pid, worker.alive(), stalled_s, written, encoded,
            feed.ring.slots_used(), feed.ring.capacity, len(feed.backlog),
            feed.backlog_bytes(), take.counts.spilled(feed), *rates,
            take.message_of(encoder_for(name)),
        )  # fmt: skip

    def _stats_status(self, take: Take) -> StatsStatus:
        worker = self.supervisor.handles[STATS_WORKER]
        seen = sum(feed.ring.released(STATS_READER) for feed in self.feeds.values())
        stalled_s = self.supervisor.stalled_s(STATS_WORKER)
        error = take.message_of(STATS_WORKER)
        return StatsStatus(worker.pid, worker.alive(), stalled_s, seen, error)

    def publish_row(self, row: Mapping[str, np.ndarray], take: int, frame_index: int) -> None:
        """For the preview only (a few stores); nothing when it is off."""
        if self.preview is not None:
            self.preview.publish_row(row, take, frame_index)

    def histograms(self, done: EpisodeDone) -> dict[str, np.ndarray]:
        """An episode's per-camera pixel counts ((3, 256) RGB, (1, 4096) depth codes), from the
        stats worker's EpisodeDone."""
        pairs = zip(self.feeds, done.histograms, strict=True)
        return {name: np.frombuffer(data, np.int64).reshape(self.store.shapes[i])
                for i, (name, data) in enumerate(pairs)}  # fmt: skip

    def open_take(self, take: Take, video_path: VideoPath) -> None:
        """Open the IDLE `take` (rolling, if the pipeline rolls): tell each encoder where its
        video goes."""
        for feed in self.feeds.values():
            feed.ring.reset_high_water()
        roll = None if self.roll is None else Roll(self.roll, self.store, take.number)
        for role, message in take.open(self.feeds.values(), video_path, roll).items():
            self.supervisor.send(role, message, self.live)

    def keep(self, take: Take) -> None:
        """Keep the ROLLING `take`'s window: each encoder told where the episode starts."""
        for role, message in take.keep().items():
            self.supervisor.send(role, message, self.live)

    def loan(self, camera: str) -> np.ndarray:
        if camera not in self.feeds:
            raise FrameError(f"loan: unknown camera {camera!r}; cameras: {list(self.feeds)}")
        return self.feeds[camera].loan()

    def make_room(self, refuse: bool, take: Take) -> None:
        """For overflow 'block' or 'error' (`refuse`): every ring must have a free slot."""
        for name, feed in self.feeds.items():
            while feed.ring.claim() is None:
                if refuse:
                    raise RingFullError(
                        f"camera {name!r}: ring full ({feed.ring.capacity} slots); the encoder is "
                        "behind (overflow='error'); the frame was not added"
                    )
                self.supervisor.supervise(self.live)
                time.sleep(0.001)

    def drain_all(self) -> None:
        for feed in self.feeds.values():
            if feed.backlog:
                feed.drain()
