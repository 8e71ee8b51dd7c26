"""Shared test helpers: both backends, synthetic scenes, decoding, and the /dev/shm leak check."""

from __future__ import annotations

import os
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe.ipc import names

BACKENDS = ["process", "thread"]
# A small dataset LeRobot 0.4.4 itself wrote, kept in the repository (188 KiB).
REFERENCE = Path(__file__).resolve().parent / "data" / "lerobot-v3-example"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "meta" / "info.json").exists(),
    reason=f"LeRobot's reference dataset is not at {REFERENCE} (it is part of the repository)",
)


OUR_CONTROL_PROCESSES: set[int] = set()  # recorder children started by tests


def leaked() -> list[str]:
    """shmpipe objects in /dev/shm owned by this test process or by a control process a test
    started. (Objects of unrelated processes, e.g. a benchmark running beside the tests, are
    not this run's to judge.)"""
    ours = OUR_CONTROL_PROCESSES | {os.getpid()}
    return [e for e in names.list_objects() if names.owner_pid(e) in ours]


@pytest.fixture(autouse=True)
def no_shared_memory_left():
    """Every test must leave no shmpipe segment or semaphore behind (after a short grace for
    workers that clean up after a killed owner)."""
    yield
    deadline = time.monotonic() + 3.0
    left = leaked()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = leaked()
    assert left == [], f"shmpipe objects left in /dev/shm: {left}"


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv("SHMPIPE_BACKEND", request.param)
    return request.param


def episode_files(root) -> list[str]:
    """Files of recorded episodes under `root` (videos and data), relative, sorted."""
    return sorted(
        p.relative_to(root).as_posix()
        for folder in ("videos", "data")
        for p in (root / folder).rglob("*")
        if p.is_file()
    )


def smooth_frame(i: int, height: int, width: int, phase: float = 0.0) -> np.ndarray:
    """A smooth moving colour gradient: easy to encode well, so PSNR reflects our data path."""
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(0, 1, width)[None, :]
    t = i / 30.0 + phase
    r = 0.5 + 0.4 * np.sin(2 * np.pi * (x + 0.1 * t))
    g = 0.5 + 0.4 * np.sin(2 * np.pi * (y + 0.07 * t))
    b = 0.5 + 0.4 * np.sin(2 * np.pi * (x + y + 0.05 * t))
    return (np.stack([r + 0 * y, g + 0 * x, b], axis=-1) * 255).round().astype(np.uint8)


def textured_frame(i: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Varied pixel values (for stats), deterministic per (i, seed)."""
    rng = np.random.default_rng(seed * 100003 + i)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def decode_video(path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame of the file as RGB arrays, and each frame's time in seconds."""
    frames, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * Fraction(frame.time_base)))
    return frames, times


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def exact_image_stats(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-channel stats straight from numpy over LeRobot's downsampled pixels, scaled to [0,1]."""
    h, w = frames[0].shape[:2]
    k = 1 if max(h, w) < 300 else int(max(h, w) / 150)
    pixels = np.concatenate([f[::k, ::k].reshape(-1, 3) for f in frames]).astype(np.float64) / 255
    out = {
        "min": pixels.min(axis=0),
        "max": pixels.max(axis=0),
        "mean": pixels.mean(axis=0),
        "std": pixels.std(axis=0),
    }
    for key, q in {"q01": 0.01, "q10": 0.1, "q50": 0.5, "q90": 0.9, "q99": 0.99}.items():
        out[key] = np.quantile(pixels, q, axis=0)
    out = {k: v.reshape(3, 1, 1) for k, v in out.items()}
    out["count"] = np.array([pixels.shape[0]])
    return out


def value_of(k: int) -> int:
    """The grey level that names frame k: neighbours differ by far more than the encoder's
    error, so a frame out of place (one camera a frame ahead of another) shows."""
    return (k * 37) % 224 + 16


def marked_frames(count: int, height: int, width: int, phase: float = 0.0) -> list[np.ndarray]:
    """Smooth frames (for PSNR) with a flat 32x32 corner whose value identifies the frame."""
    out = []
    for k in range(count):
        f = smooth_frame(k, height, width, phase).copy()
        f[:32, :32] = value_of(k)
        out.append(f)
    return out


def assert_marked_episode(
    result, camera: str, frames: list[np.ndarray], n: int, psnr_every: int = 1
) -> None:
    """The camera's video is frames[i % len(frames)] (marked_frames) for i < n, in order, at
    i / 30 s, as are the rows."""
    decoded, times = decode_video(result.videos[camera][0])
    assert len(decoded) == n, f"{camera}: {len(decoded)} of {n} frames in the video"
    assert pq.ParquetFile(result.data).metadata.num_rows == n
    np.testing.assert_allclose(times, np.arange(n) / 30, atol=1e-4)
    k = len(frames)
    marks = np.array([f[:32, :32].mean() for f in decoded])
    expected = np.array([value_of(i % k) for i in range(n)])
    wrong = np.flatnonzero(np.abs(marks - expected) > 8)
    assert wrong.size == 0, f"{camera}: frames {wrong[:10].tolist()} out of place"
    worst = min(psnr(decoded[i], frames[i % k]) for i in range(0, n, psnr_every))
    assert worst >= 30, f"{camera}: worst PSNR {worst:.1f} dB"
