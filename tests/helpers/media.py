"""Reading videos back: decoded frames, their times, and how close they are to the input."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


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
