"""The raw encoder limit: how fast PyAV alone encodes these frames with these settings.

No rings, no control loop, no stats: one tight encode loop per camera, all cameras at once (one
thread each; PyAV releases the GIL), so the number reflects K cameras sharing this machine's cores.
shmpipe's sustained encode rate is reported as a fraction of this.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from bench.codec import open_video
from shmpipe.video.encoder_config import VideoEncoderConfig


def encode_camera(
    frames: np.ndarray,
    path: Path,
    settings: VideoEncoderConfig,
    fps: int,
    num_cameras: int = 1,
    start: threading.Barrier | None = None,
) -> dict:
    """Encode one camera's frames to `path`; the loop and the flush are timed apart."""
    import av

    height, width = frames.shape[1:3]
    container, stream = open_video(path, settings, height, width, fps, num_cameras)
    if start is not None:
        start.wait()
    t0 = time.perf_counter()
    returned = np.empty(len(frames))  # when each encode() call came back
    for i, frame in enumerate(frames):
        container.mux(stream.encode(av.VideoFrame.from_numpy_buffer(frame, format="rgb24")))
        returned[i] = time.perf_counter()
    t1 = time.perf_counter()
    container.mux(stream.encode(None))
    container.close()
    t2 = time.perf_counter()
    loop_s, flush_s = t1 - t0, t2 - t1
    return {
        "frames": len(frames),
        "loop_s": loop_s,
        "flush_s": flush_s,
        "fps": len(frames) / loop_s,
        "sustained_fps": sustained_fps(returned),
        "fps_with_flush": len(frames) / (loop_s + flush_s),
        "bytes": path.stat().st_size,
    }


def sustained_fps(returned: np.ndarray) -> float:
    """Frames per second over the second half of the loop.

    The encoder swallows its first ~50 frames into its look-ahead at once, which flatters the
    whole-loop rate; once the look-ahead is full, encode() returns at the rate frames get encoded.
    """
    half = len(returned) // 2
    if len(returned) - half < 2:
        return float("nan")
    return float((len(returned) - 1 - half) / (returned[-1] - returned[half]))


def encode_concurrently(
    episode: list[np.ndarray], out_dir: Path, settings: VideoEncoderConfig, fps: int, tag: str
) -> dict:
    """All cameras at once, one thread each; per-camera results plus their mean fps."""
    out_dir.mkdir(parents=True, exist_ok=True)
    start = threading.Barrier(len(episode))
    results: list[dict | BaseException] = [RuntimeError("not run")] * len(episode)

    def run(camera: int) -> None:
        try:
            path = out_dir / f"{tag}_cam{camera}.mp4"
            results[camera] = encode_camera(
                episode[camera], path, settings, fps, len(episode), start
            )
        except BaseException as exc:  # reported, then re-raised in the caller's thread
            start.abort()
            results[camera] = exc

    threads = [threading.Thread(target=run, args=(c,)) for c in range(len(episode))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    per_camera = [r for r in results if isinstance(r, dict)]
    return {
        "cameras": per_camera,
        "fps_per_camera": float(np.mean([r["fps"] for r in per_camera])),
        "sustained_fps_per_camera": float(np.mean([r["sustained_fps"] for r in per_camera])),
        "fps_total": float(sum(r["fps"] for r in per_camera)),
        "flush_s": float(max(r["flush_s"] for r in per_camera)),
    }


def raw_limit(
    episode: list[np.ndarray], out_dir: Path, settings: VideoEncoderConfig, fps: int
) -> dict:
    """The limit with all K cameras sharing the machine, and with one camera alone."""
    together = encode_concurrently(episode, out_dir, settings, fps, tag="concurrent")
    alone = encode_concurrently(episode[:1], out_dir, settings, fps, tag="single")
    return {"concurrent": together, "single_camera": alone["cameras"][0]}
