"""The shared memory and workers of one started Pipeline, owned by one ExitStack.

`ring_slots_for` sizes the rings (and refuses what cannot work: a ring smaller than the encoder
needs, or more than /dev/shm has); `Session` makes the owner lock, the rings with their feeds,
the stats store and the workers, in that order, and the stack undoes them in reverse.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from shmpipe import codec_probe, codecs, config, depth, names, priority
from shmpipe.camera_feed import BacklogBudget, CameraFeed, RateMeter
from shmpipe.dataset import CommittedEpisode
from shmpipe.doorbell import Doorbell
from shmpipe.errors import ConfigError, FrameError, RingFullError
from shmpipe.image_stats import histogram_shape
from shmpipe.messages import EncoderSpec, Owner, StartEpisode, StatsSpec, VideoSettings
from shmpipe.results import CameraStatus, EpisodeResult, PipelineStatus, StatsStatus, VideoSpan
from shmpipe.ring import ENCODER_READER, STATS_READER, RingWriter, ring_bytes
from shmpipe.segment import shm_free_bytes, shm_shortage_error
from shmpipe.stats_store import StatsStore
from shmpipe.supervisor import Supervisor

log = logging.getLogger("shmpipe")
SHM_SHARE = 0.9  # of free /dev/shm that default rings may take
STATS = "stats"  # the stats worker's label; encoders are labelled by camera


def video_settings(cameras: dict[str, tuple[int, int, int]], fps: int,
                   encoder: config.VideoEncoderConfig, prio: object,
                   backend: str) -> dict[str, VideoSettings]:  # fmt: skip
    """Each camera's encoder settings; all encoders together use about one thread per core.
    vcodec "auto" becomes the first encoder that opens and encodes at every camera's size here
    (shmpipe.codecs.choose); the `choice` of the result names it and why the others were not."""
    threads = config.encoder_threads(len(cameras))

    def settings(vcodec: str) -> dict[str, VideoSettings]:
        chosen = encoder.resolved(vcodec)
        options = chosen.codec_options(threads)
        pix_fmt = codecs.input_pix_fmt(vcodec, chosen.pix_fmt)
        return {name: VideoSettings(fps, w, h, codecs.ENCODERS[vcodec], pix_fmt, options, prio,
                                    backend) for name, (h, w, _) in rgb.items()}  # fmt: skip

    rgb = {name: shape for name, shape in cameras.items() if not depth.is_depth(shape)}
    # depth: LeRobot's DepthEncoderConfig (lossless HEVC, gray12le), whatever `encoder` says
    depth_options = codecs.codec_options(depth.VCODEC, 30, 2, None, 0, depth.EXTRA_OPTIONS,
                                         threads)  # fmt: skip
    depths = {name: VideoSettings(fps, w, h, codecs.ENCODERS[depth.VCODEC], depth.PIX_FMT,
                                  depth_options, prio, backend, depth.PIX_FMT)
              for name, (h, w, _) in cameras.items() if name not in rgb}  # fmt: skip

    def unusable(vcodec: str) -> str | None:
        try:
            sizes = {(v.width, v.height): v for v in settings(vcodec).values()}
        except ConfigError as exc:
            return str(exc)
        reasons = (codec_probe.unusable_reason(video) for video in sizes.values())
        return next((reason for reason in reasons if reason), None)

    choice = codecs.choose(encoder.vcodec, unusable)
    if encoder.vcodec == codecs.AUTO:
        log.info("vcodec 'auto' chose %s; skipped: %s", choice.encoder,
                 "; ".join(choice.notes) or "none")  # fmt: skip
    chosen = settings(choice.encoder) | depths
    return codecs.CameraVideos({name: chosen[name] for name in cameras}, choice)


def ring_slots_for(
    cameras: dict[str, tuple[int, int, int]],
    videos: dict[str, VideoSettings],
    keyframe_interval: int,
    ring_slots: int | None,
    budget_bytes: int,
) -> int:
    """Slots per ring: as asked, or from the budget and what /dev/shm has free; never below
    what the encoders need (ConfigError), never more than /dev/shm holds (SharedMemoryError)."""
    minimum = max(codec_probe.min_ring_slots(v, keyframe_interval) for v in videos.values())
    if ring_slots is not None and ring_slots < minimum:
        raise ConfigError(
            f"ring_slots={ring_slots} is below the minimum of {minimum}: the encoder holds that "
            "many frames before they are safely on disk"
        )
    fps = next(iter(videos.values())).fps
    frame_bytes = max(int(np.prod(s)) * depth.dtype_of(s).itemsize for s in cameras.values())
    slots = ring_slots or config.ring_capacity(
        frame_bytes, fps, len(cameras), budget_bytes, minimum
    )
    free = shm_free_bytes()
    if ring_slots is None:  # a small /dev/shm (Docker: 64 MiB) gets smaller rings, not an error
        while slots > minimum + 8 and _shm_needed(cameras, slots) > free * SHM_SHARE:
            slots = max(minimum + 8, slots * 3 // 4)
    needed = _shm_needed(cameras, slots)
    if needed > free:
        raise shm_shortage_error(needed, free, f"{len(cameras)} camera rings of {slots} slots")
    return slots


def _shm_needed(cameras: dict[str, tuple[int, int, int]], slots: int) -> int:
    rings = sum(ring_bytes(slots, s, depth.dtype_of(s).itemsize) for s in cameras.values())
    return rings + StatsStore.size_for(len(cameras), _histogram_shapes(cameras))


def _histogram_shapes(cameras: dict[str, tuple[int, int, int]]) -> list[tuple[int, int]]:
    return [histogram_shape(shape) for shape in cameras.values()]


class Session:
    def __init__(self, stack: ExitStack, cameras: dict[str, tuple[int, int, int]],
                 videos: dict[str, VideoSettings], ring_slots: int, backlog_bytes: int,
                 spill_dir: Path, backend: str, stall_timeout_s: float,
                 control_priority: int | None) -> None:  # fmt: skip
        names.sweep_dead_owners()
        self._owner = Owner(os.getpid(), names.new_token())
        stack.callback(names.OwnerLock(self._owner.pid, self._owner.token).release)
        self.stats_bell = self._push(stack, Doorbell.create(self._ipc("bellstats")))
        self.store = self._push(
            stack, StatsStore.create(self._ipc("stats"), len(cameras), _histogram_shapes(cameras))
        )
        budget = BacklogBudget(backlog_bytes)
        self.feeds: dict[str, CameraFeed] = {}
        self._meters = {name: RateMeter() for name in cameras}
        for i, (name, shape) in enumerate(cameras.items()):
            ring = RingWriter.create(
                self._ipc(f"ring{i}"), ring_slots, shape, depth.dtype_of(shape)
            )
            self._push(stack, ring)
            bell = self._push(stack, Doorbell.create(self._ipc(f"bell{i}")))
            spill = spill_dir / f"{self._owner.token}-{i}.raw"
            feed = CameraFeed(name, ring, bell, self.stats_bell, budget, spill)
            self.feeds[name] = self._push(stack, feed)  # closing twice is harmless
        self.supervisor = Supervisor(backend, self._heartbeat, self.wake_all, stall_timeout_s)
        stack.callback(self.supervisor.stop_all)
        self._videos = videos
        self._start_workers(videos)
        self.control_raised = False
        if control_priority is not None:
            saved = priority.raise_control_thread(control_priority)
            self.control_raised = saved is not None
            if saved is None:
                log.info("the control thread stays at normal priority (SCHED_FIFO not permitted)")
            else:
                stack.callback(priority.restore_thread, saved)

    @property
    def encoder_choice(self) -> codecs.EncoderChoice:
        """The encoder start() opened and, for vcodec "auto", why it skipped those before it."""
        first = next(iter(self._videos.values())).vcodec
        return getattr(self._videos, "choice", None) or codecs.EncoderChoice(first)

    def _ipc(self, what: str) -> str:
        return names.object_name(self._owner.pid, self._owner.token, what)

    @staticmethod
    def _push(stack: ExitStack, thing):
        stack.callback(thing.close)
        return thing

    def _start_workers(self, videos: dict[str, VideoSettings]) -> None:
        for name, feed in self.feeds.items():
            spec = EncoderSpec(name, feed.ring.name, feed.bell.name, self._owner, videos[name])
            self.supervisor.start("encoder", name, spec)
        rings = [feed.ring.name for feed in self.feeds.values()]
        priority = next(iter(videos.values())).priority
        spec = StatsSpec(list(self.feeds), rings, self.stats_bell.name,
                         self.store.name, self._owner, priority)  # fmt: skip
        self.supervisor.start("stats", STATS, spec)
        self.supervisor.await_ready()

    def _heartbeat(self, label: str) -> tuple[int, bool]:
        if label == STATS:
            return sum(f.ring.heartbeat(STATS_READER)[0] for f in self.feeds.values()), False
        return self.feeds[label].ring.heartbeat(ENCODER_READER)

    def wake_all(self) -> None:
        for feed in self.feeds.values():
            feed.bell.ring()
        self.stats_bell.ring()

    def status(self, episode: int | None, episode_frames: int) -> PipelineStatus:
        self.supervisor.supervise()
        cameras = {name: self._camera_status(name) for name in self.feeds}
        choice = self.encoder_choice
        return PipelineStatus(cameras, self._stats_status(), episode, episode_frames,
                              choice.encoder, list(choice.notes))  # fmt: skip

    def _camera_status(self, name: str) -> CameraStatus:
        feed, worker = self.feeds[name], self.supervisor.handles[name]
        written, encoded = feed.ring.write_seq, feed.ring.progress(ENCODER_READER)
        added = written + len(feed.backlog)  # into the ring or waiting for it
        input_fps, encode_fps = self._meters[name].rates(added, encoded)
        behind = added - encoded
        wait = behind / encode_fps if encode_fps > 0 else (0.0 if behind == 0 else float("inf"))
        return CameraStatus(
            worker.pid, worker.alive(), self.supervisor.stalled_s(name), written, encoded,
            feed.ring.slots_used(), feed.ring.capacity, len(feed.backlog),
            feed.backlog_bytes(), feed.spilled, input_fps, encode_fps, wait,
        )  # fmt: skip

    def _stats_status(self) -> StatsStatus:
        worker = self.supervisor.handles[STATS]
        seen = sum(feed.ring.released(STATS_READER) for feed in self.feeds.values())
        return StatsStatus(worker.pid, worker.alive(), self.supervisor.stalled_s(STATS), seen)

    def histograms(self) -> dict[str, np.ndarray]:
        """The open episode's per-camera pixel counts ((3, 256) RGB, (1, 4096) depth codes), as
        the stats worker committed."""
        return {name: self.store.tally(i).histogram for i, name in enumerate(self.feeds)}

    def episode_result(self, committed: CommittedEpisode, done: dict, waited: float,
                       started: float) -> EpisodeResult:  # fmt: skip
        """What finish_episode returns; `done` has every encoder's EpisodeDone."""
        n, fps = committed.length, next(iter(self._videos.values())).fps
        timings = {"video_flush": waited,
                   "encoder_flush": max(done[name].flush_seconds for name in self.feeds),
                   **{k: committed.timings[k] for k in ("data", "stats", "meta")}}  # fmt: skip
        timings["total"] = time.perf_counter() - started
        return EpisodeResult(
            episode_index=committed.episode_index,
            num_frames=n,
            videos={name: VideoSpan(done[name].path, 0.0, n / fps) for name in self.feeds},
            data=committed.data_path,
            stats=committed.stats,
            timings=timings,
            ring_high_water={name: feed.ring.high_water for name, feed in self.feeds.items()},
            overflow_count={name: feed.overflowed for name, feed in self.feeds.items()},
            tasks=committed.tasks,
            worker_restarts=self.supervisor.take_restarts,
        )

    def open_episode(self, video_path, episode: int) -> int:
        """Tell the workers a new take begins (each encoder: where its video goes); its number."""
        starts = {}
        for name, feed in self.feeds.items():
            feed.ring.reset_high_water()
            starts[name] = StartEpisode(take=0, video_path=str(video_path(name, episode)))
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

    def drain_all(self) -> None:
        for feed in self.feeds.values():
            if feed.backlog:
                feed.drain()
