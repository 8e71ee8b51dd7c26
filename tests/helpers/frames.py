"""Synthetic scenes: smooth (for PSNR), textured (for stats), marked and flat (for order)."""

from __future__ import annotations

import numpy as np


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


def flat_frame(cameras: dict, k: int, features: dict | None = None) -> dict:
    """Frame k of every camera, flat at value_of(k); every feature filled with k."""
    out = {name: np.full(shape, value_of(k), np.uint8) for name, shape in cameras.items()}
    for name, shape in (features or {}).items():
        out[name] = np.full(shape, k, np.float32)
    return out
