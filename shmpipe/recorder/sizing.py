"""What start() decides before it makes anything: each camera's encoder, and the ring size.

`video_settings` picks the encoder (vcodec "auto" probes them) and its options per camera;
`ring_slots_for` sizes the rings and refuses what cannot work: a ring smaller than the encoder
needs, or more than /dev/shm has.
"""

from __future__ import annotations

import logging

import numpy as np

from shmpipe import depth
from shmpipe.errors import ConfigError
from shmpipe.ipc.histogram_store import StatsStore
from shmpipe.ipc.ring import ring_bytes
from shmpipe.ipc.segment import check_shm_usable, shm_free_bytes, shm_shortage_error
from shmpipe.recorder import memory_budget, preview, settings
from shmpipe.stats.images import histogram_shape
from shmpipe.video import capacity, codecs, probe
from shmpipe.video.encoder_config import VideoEncoderConfig
from shmpipe.video.settings import VideoSettings

log = logging.getLogger("shmpipe")
SHM_SHARE = 0.9  # of free /dev/shm that default rings may take


def video_settings(cameras: dict[str, tuple[int, int, int]], fps: int,
                   encoder: VideoEncoderConfig, prio: object,
                   backend: str) -> dict[str, VideoSettings]:  # fmt: skip
    """Each camera's encoder settings; all encoders together use about one thread per core.
    vcodec "auto" becomes the first encoder that opens and encodes at every camera's size here
    (shmpipe.video.codecs.choose); the `choice` of the result names it and why the others were
    not."""
    threads = settings.encoder_threads(len(cameras))

    def per_camera(vcodec: str) -> dict[str, VideoSettings]:
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
            sizes = {(v.width, v.height): v for v in per_camera(vcodec).values()}
        except ConfigError as exc:
            return str(exc)
        reasons = (probe.unusable_reason(video) for video in sizes.values())
        return next((reason for reason in reasons if reason), None)

    choice = codecs.choose(encoder.vcodec, unusable)
    if encoder.vcodec == codecs.AUTO:
        log.info("vcodec 'auto' chose %s; skipped: %s", choice.encoder,
                 "; ".join(choice.notes) or "none")  # fmt: skip
    chosen = per_camera(choice.encoder) | depths
    videos = {name: chosen[name] for name in cameras}
    return codecs.CameraVideos(videos, choice, check_capacity(videos, fps))


def check_capacity(videos: dict[str, VideoSettings], fps: int) -> capacity.Capacity:
    """What the cameras need of this machine's cores, from the probe's CPU per frame; a warning
    before the first frame if they do not fit with a margin (shmpipe.video.capacity)."""
    costs = {name: (v.height, v.width, _cpu_per_frame(name, v)) for name, v in videos.items()}
    need = capacity.estimate(costs, fps)
    if not need.fits:
        log.warning("%d cameras at %d fps may not keep up: %s (at most %.0f %% leaves room for "
                    "the rest); frames would wait in the backlog and finish_episode() for them",
                    len(videos), fps, need.describe(), 100 * capacity.MARGIN)  # fmt: skip
    return need


def _cpu_per_frame(camera: str, video: VideoSettings) -> float:
    """The probe's cost per frame; an encoder that cannot take this camera is refused by name."""
    try:
        return probe.cpu_per_frame(video)
    except probe.EncoderUnusable as exc:
        raise probe.EncoderUnusable(f"camera {camera!r}: {exc}", exc.reason, exc.errno) from None


def plan_start(pipe) -> tuple[dict[str, VideoSettings], VideoEncoderConfig, int, int]:
    """Everything start() decides before it makes anything, from a Pipeline's settings: each
    camera's video settings, the encoder ("auto" resolved to what opened), slots per ring and
    the backlog's memory allowance."""
    preview.check_installed(pipe.preview)
    videos = video_settings(pipe.cameras, pipe.fps, pipe.encoder, pipe.encoder_priority,
                            pipe.backend)  # fmt: skip
    encoder = pipe.encoder.resolved(videos.choice.encoder)
    slots, backlog = plan_memory(pipe.cameras, videos, encoder.g, pipe.ring_slots,
                                 pipe.ring_budget_bytes, pipe.backlog_bytes)  # fmt: skip
    return videos, encoder, slots, backlog


def plan_memory(cameras: dict[str, tuple[int, int, int]], videos: dict[str, VideoSettings],
                keyframe_interval: int, ring_slots: int | None, budget_bytes: int,
                backlog_bytes: int | None) -> tuple[int, int]:  # fmt: skip
    """(slots per ring, the backlog's memory allowance). Under a cgroup memory limit, default
    rings take at most half the room the encoder workers leave, and the backlog half of what
    is left then; ConfigError naming the limit if rings and workers cannot fit."""
    limit = memory_budget.cgroup_limit()
    if limit is None:
        slots = ring_slots_for(cameras, videos, keyframe_interval, ring_slots, budget_bytes)
        return slots, memory_budget.host_ram() // 8 if backlog_bytes is None else backlog_bytes
    sizes = {name: int(np.prod(s)) * depth.dtype_of(s).itemsize for name, s in cameras.items()}
    workers = memory_budget.worker_bytes(sizes)
    cap = max(0, limit.room - workers) // 2
    slots = ring_slots_for(cameras, videos, keyframe_interval, ring_slots, budget_bytes, cap)
    rings = _shm_needed(cameras, slots)
    return slots, memory_budget.check_fits(limit, rings, workers, backlog_bytes)


def ring_slots_for(
    cameras: dict[str, tuple[int, int, int]],
    videos: dict[str, VideoSettings],
    keyframe_interval: int,
    ring_slots: int | None,
    budget_bytes: int,
    memory_cap: int | None = None,
) -> int:
    """Slots per ring: as asked, or from the budget and what /dev/shm has free (and at most
    `memory_cap` bytes, a cgroup's share); never below what the encoders need (ConfigError),
    never more than /dev/shm holds (SharedMemoryError)."""
    check_shm_usable(2 * len(cameras) + 5)  # rings, doorbells, stats block, bell, row, locks
    minimum = max(probe.min_ring_slots(v, keyframe_interval) for v in videos.values())
    if ring_slots is not None and ring_slots < minimum:
        raise ConfigError(
            f"ring_slots={ring_slots} is below the minimum of {minimum}: the encoder holds that "
            "many frames before they are safely on disk"
        )
    fps = next(iter(videos.values())).fps
    frame_bytes = max(int(np.prod(s)) * depth.dtype_of(s).itemsize for s in cameras.values())
    slots = ring_slots or settings.ring_capacity(
        frame_bytes, fps, len(cameras), budget_bytes, minimum
    )
    free = shm_free_bytes()
    target = free * SHM_SHARE if memory_cap is None else min(free * SHM_SHARE, memory_cap)
    if ring_slots is None:  # a small /dev/shm (Docker: 64 MiB) gets smaller rings, not an error
        while slots > minimum + 8 and _shm_needed(cameras, slots) > target:
            slots = max(minimum + 8, slots * 3 // 4)
    needed = _shm_needed(cameras, slots)
    if needed > free:
        raise shm_shortage_error(needed, free, f"{len(cameras)} camera rings of {slots} slots")
    return slots


def _shm_needed(cameras: dict[str, tuple[int, int, int]], slots: int) -> int:
    rings = sum(ring_bytes(slots, s, depth.dtype_of(s).itemsize) for s in cameras.values())
    return rings + StatsStore.size_for(len(cameras), histogram_shapes(cameras))


def histogram_shapes(cameras: dict[str, tuple[int, int, int]]) -> list[tuple[int, int]]:
    return [histogram_shape(shape) for shape in cameras.values()]
