"""One runner per variant the scenario compares: shmpipe (process, thread, and loan: the
process backend fed loaned ring slots, so add_frame copies nothing), before, raw.

Each takes the same pre-generated frames and returns a plain JSON-ready dict with the same keys
where they make sense. Figures that need two variants (ratio to the raw limit) are left to the
report. Each runner is meant to run in a fresh process, so memory and CPU figures are its own.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import measure
from bench.codec import count_frames
from bench.control_loop import LoopTrace, run_loop
from bench.frames import STATE_DIM, frame_maker

FEATURES = {"observation.state": (STATE_DIM,), "action": (STATE_DIM,)}
TASK = "pick up the cube"
VARIANTS = ("process", "thread", "loan", "before", "raw")


@dataclass(frozen=True)
class Scenario:
    cameras: int
    height: int
    width: int
    fps: int
    seconds: float
    paced: bool = True
    seed: int = 0

    @property
    def num_frames(self) -> int:
        return max(1, round(self.seconds * self.fps))

    @property
    def camera_shapes(self) -> dict[str, tuple[int, int, int]]:
        shape = (self.height, self.width, 3)
        return {f"observation.images.cam{c}": shape for c in range(self.cameras)}


def _loop_figures(trace: LoopTrace, scenario: Scenario) -> dict:
    period_ms = 1e3 / scenario.fps
    late = [x for x in trace.lateness_ms if x > period_ms]
    return {
        "loop_s": trace.duration_s,
        "add_frame_ms": measure.summarize_ms(trace.add_frame_ms),
        "lateness_ms": measure.summarize_ms(trace.lateness_ms) if scenario.paced else None,
        "ticks": len(trace.add_frame_ms),
        "ticks_late": len(late) if scenario.paced else None,
        "status_call_ms": measure.summarize_ms(trace.sample_ms),
    }


def _decoded(scenario: Scenario, videos: dict[str, tuple[str, float, float]]) -> dict:
    decoded = {cam: count_frames(Path(p), start, end) for cam, (p, start, end) in videos.items()}
    total_bytes = sum(Path(p).stat().st_size for p, _, _ in videos.values())
    return {
        "frames_added": scenario.num_frames,
        "frames_decoded": decoded,
        "frames_dropped": {cam: scenario.num_frames - n for cam, n in decoded.items()},
        "bytes_per_frame": total_bytes / (len(videos) * scenario.num_frames),
    }


def _series(trace: LoopTrace) -> dict:
    return {"add_frame_ms": trace.add_frame_ms, "lateness_ms": trace.lateness_ms}


def run_shmpipe(variant: str, scenario: Scenario, episode: list[np.ndarray], out_dir: Path) -> dict:
    """shmpipe.Pipeline driven by the control loop: variant "process" or "thread" (the
    backend), or "loan" (the process backend, every image given in a loaned slot)."""
    backend = "process" if variant == "loan" else variant
    os.environ["SHMPIPE_BACKEND"] = backend
    from shmpipe import Pipeline, VideoEncoderConfig

    rss_start = measure.rss_now_mb()
    encoder = VideoEncoderConfig()
    pipe = Pipeline(
        root=out_dir,
        fps=scenario.fps,
        cameras=scenario.camera_shapes,
        features=FEATURES,
        encoder=encoder,
    )
    t0 = time.perf_counter()
    pipe.start()
    start_s = time.perf_counter() - t0
    try:
        first = pipe.status()
        pids = _worker_pids(first)
        cpu_start = {"control": measure.cpu_seconds_self()}
        cpu_start |= {label: measure.cpu_seconds_of(pid) for label, pid in pids.items()}
        loan = pipe.loan if variant == "loan" else None
        trace = _record(pipe, scenario, episode, sample=pipe.status, loan=loan)
        drain_s = None if scenario.paced else _wait_for_encoders(pipe, trace, scenario.num_frames)
        t0 = time.perf_counter()
        result = pipe.finish_episode()
        finish_wall = time.perf_counter() - t0
        cpu_end = {"control": measure.cpu_seconds_self()}
        cpu_end |= {label: measure.cpu_seconds_of(pid) for label, pid in pids.items()}
        worker_rss = {label: measure.peak_rss_mb_of(pid) for label, pid in pids.items()}
    finally:
        pipe.close()
    ring = _ring_series(trace, scenario)
    return {
        "variant": variant,
        "start_s": start_s,
        **_loop_figures(trace, scenario),
        "drain_s": drain_s,
        "finish_s": {**result.timings, "wall": finish_wall},
        "encode": _encode_rates(
            ring, trace, (drain_s or 0.0) + result.timings["video_flush"], scenario
        ),
        **_decoded(scenario, result.videos),
        "ring_high_water": result.ring_high_water,
        "ring_slots": {cam: s.slots_total for cam, s in first.cameras.items()},
        "overflow_count": result.overflow_count,
        "rss_mb": _rss(rss_start) | {"workers_peak": worker_rss},
        "cpu_s": _cpu_delta(cpu_start, cpu_end),
        "series": _series(trace) | {"ring": ring},
    }


def _wait_for_encoders(pipe, trace: LoopTrace, num_frames: int, stall_s: float = 10.0) -> float:
    """Unpaced: keep sampling status until every encoder has taken every frame.

    The loop outruns the encoders, so without this the samples would end before most encoding
    happens; finish_episode then measures the flush alone. Returns the seconds waited.
    """
    t0 = time.perf_counter()
    last, last_change = None, t0
    while True:
        status = pipe.status()
        now = time.perf_counter()
        trace.samples.append(status)
        trace.sample_times.append(trace.duration_s + now - t0)
        encoded = tuple(s.frames_encoded for s in status.cameras.values())
        if min(encoded) >= num_frames:
            return now - t0
        if encoded != last:
            last, last_change = encoded, now
        elif now - last_change > stall_s:
            raise RuntimeError(f"encoders made no progress for {stall_s} s at {encoded}")
        time.sleep(0.1)


def _worker_pids(status) -> dict[str, int]:
    """Worker processes other than this one (none for the thread backend)."""
    pids = {f"encoder {cam}": s.worker_pid for cam, s in status.cameras.items()}
    pids["stats"] = status.stats.worker_pid
    return {label: pid for label, pid in pids.items() if pid and pid != os.getpid()}


def _ring_series(trace: LoopTrace, scenario: Scenario) -> dict:
    cams = list(scenario.camera_shapes)
    series = {"t": trace.sample_times}
    for key in ("slots_used", "frames_encoded", "frames_written", "backlog"):
        series[key] = {cam: [getattr(s.cameras[cam], key) for s in trace.samples] for cam in cams}
    return series


def _encode_rates(ring: dict, trace: LoopTrace, after_loop_s: float, scenario: Scenario) -> dict:
    """Sustained fps: slope of frames_encoded over the middle 80 % of the sampled time.

    End-to-end fps: frames / (loop + everything after it until the files are closed),
    comparable with the raw limit's fps_with_flush when unpaced (paced, the frame rate bounds it).
    """
    t = np.asarray(ring["t"])
    end = t[-1] if len(t) else 0.0
    window = (t >= 0.1 * end) & (t <= 0.9 * end)
    sustained = []
    for encoded in ring["frames_encoded"].values():
        e, tw = np.asarray(encoded)[window], t[window]
        if len(tw) >= 2 and tw[-1] > tw[0]:
            sustained.append((e[-1] - e[0]) / (tw[-1] - tw[0]))
    return {
        "sustained_fps_per_camera": float(np.mean(sustained)) if sustained else None,
        "end_to_end_fps_per_camera": scenario.num_frames / (trace.duration_s + after_loop_s),
    }


def _rss(rss_start: float) -> dict:
    peak = measure.peak_rss_mb()
    return {"peak": peak, "at_start": rss_start, "peak_above_start": peak - rss_start}


def _cpu_delta(start: dict, end: dict) -> dict:
    return {
        label: (end[label] - start[label])
        if end.get(label) is not None and start.get(label) is not None
        else None
        for label in start
    }


def run_before(scenario: Scenario, episode: list[np.ndarray], out_dir: Path) -> dict:
    """The PNG pipeline: PNGs written by threads while recording, the rest in save_episode()."""
    from bench.before_pipeline import BeforePipeline

    rss_start = measure.rss_now_mb()
    cpu_start = measure.cpu_seconds_self()
    pipe = BeforePipeline(out_dir, scenario.fps, scenario.camera_shapes, FEATURES)
    try:
        trace = _record(pipe, scenario, episode)
        cpu_loop = measure.cpu_seconds_self()
        t0 = time.perf_counter()
        result = pipe.save_episode()
        finish_wall = time.perf_counter() - t0
    finally:
        pipe.close()
    steps = result["timings"]
    per_camera = result["encode_s_per_camera"].values()
    return {
        "variant": "before",
        **_loop_figures(trace, scenario),
        "finish_s": {
            "video_flush": steps["png_write_wait"] + steps["encode"],
            "stats": steps["stats"],
            "data": steps["data"],
            "total": steps["total"],
            "wall": finish_wall,
            "steps": steps,
            "png_writes_pending_at_save": result["png_writes_pending_at_save"],
        },
        "encode": {
            "sustained_fps_per_camera": float(
                np.mean([scenario.num_frames / s for s in per_camera])
            ),
            "end_to_end_fps_per_camera": None,
            "note": "PNG read + encode, one camera at a time, inside save_episode",
        },
        **_decoded(scenario, result["videos"]),
        "rss_mb": _rss(rss_start),
        "cpu_s": {
            "control incl. PNG writers (recording)": cpu_loop - cpu_start,
            "control (save_episode)": measure.cpu_seconds_self() - cpu_loop,
        },
        "series": _series(trace),
    }


def run_raw(scenario: Scenario, episode: list[np.ndarray], out_dir: Path) -> dict:
    """The raw encoder limit on the same frames (no control loop, nothing else running)."""
    from bench.raw_encoder import raw_limit

    rss_start = measure.rss_now_mb()
    cpu_start = measure.cpu_seconds_self()
    limit = raw_limit(episode, out_dir, _default_encoder(), scenario.fps)
    cpu = measure.cpu_seconds_self() - cpu_start
    together = limit["concurrent"]
    names = list(scenario.camera_shapes)
    videos = {
        name: (str(out_dir / f"concurrent_cam{c}.mp4"), 0.0, scenario.num_frames / scenario.fps)
        for c, name in enumerate(names)
    }
    return {
        "variant": "raw",
        "finish_s": {"video_flush": together["flush_s"]},
        "encode": {
            "sustained_fps_per_camera": together["sustained_fps_per_camera"],
            "loop_fps_per_camera": together["fps_per_camera"],
            "end_to_end_fps_per_camera": float(
                np.mean([c["fps_with_flush"] for c in together["cameras"]])
            ),
            "single_camera": limit["single_camera"],
            "cameras": together["cameras"],
        },
        **_decoded(scenario, videos),
        "rss_mb": _rss(rss_start),
        "cpu_s": {"raw encoder (all cameras, then one alone)": cpu},
    }


def _default_encoder():
    from shmpipe.video.encoder_config import VideoEncoderConfig

    return VideoEncoderConfig()


def _record(pipe, scenario, episode, sample=None, loan=None):
    """Run the control loop of `scenario` feeding `pipe.add_frame`; the loop's trace."""
    return run_loop(
        lambda frame: pipe.add_frame(frame, task=TASK),
        frame_maker(list(scenario.camera_shapes), episode, scenario.num_frames, loan),
        scenario.num_frames,
        scenario.fps,
        scenario.paced,
        sample=sample,
    )
