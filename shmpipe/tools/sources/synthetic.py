"""The "synthetic[:HxW]" source: moving camera-like content made on demand, for tests and demos."""

from __future__ import annotations

import re

import numpy as np

from shmpipe.errors import ConfigError
from shmpipe.tools.sources.base import Capture, FrameSource, capture_clock

SHAPE = (480, 640)


class SyntheticSource(FrameSource):
    """Camera-like test content made in read_into (no thread): a window panning over a smooth
    textured scene, plus sensor noise that changes every frame, so every frame differs."""

    PAN = 64  # pixels the window can move each way
    NOISE_FRAMES = 3
    NOISE_LEVELS = 9  # noise in 0..8 is added; the scene is kept to 0..247 so nothing wraps

    def __init__(self, spec: str, shape: tuple[int, int]) -> None:
        self.spec, self.shape = spec, (shape[0], shape[1], 3)
        rng = np.random.default_rng(0)
        self._scene = _scene(shape[0] + 2 * self.PAN, shape[1] + 2 * self.PAN, rng)
        self._noise = rng.integers(0, self.NOISE_LEVELS, (self.NOISE_FRAMES, *self.shape), np.uint8)
        self._sequence = -1

    def _fill(self, out: np.ndarray) -> Capture:
        k = self._sequence = self._sequence + 1
        dy, dx = _triangle(k, 2 * self.PAN), _triangle(2 * k, 2 * self.PAN)
        window = self._scene[dy : dy + self.shape[0], dx : dx + self.shape[1]]
        np.add(window, self._noise[k % self.NOISE_FRAMES], out=out)
        return Capture(capture_clock(), k)


def synthetic_shape(
    spec: str, arg: str, forms: str, size: tuple[int, int] | None
) -> tuple[int, int]:
    if not arg:
        return size or SHAPE
    match = re.fullmatch(r"([1-9]\d{0,4})x([1-9]\d{0,4})", arg)
    if match is None:
        raise ConfigError(f"camera source {spec!r}: expected one of {forms}")
    shape = int(match[1]), int(match[2])
    if size is not None and size != shape:
        raise ConfigError(f"{spec}: the spec says {shape[0]}x{shape[1]} but size is {size}")
    return shape




def _scene(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth colourful scene with soft-edged shapes and a fine grain, values 0..247."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    channels = []
    for phase in rng.uniform(0, 2 * np.pi, 3):
        wave = np.sin(5 * x + 3 * y + phase) + 0.5 * np.sin(11 * y - 7 * x + 2 * phase)
        channels.append(wave)
    scene = np.stack(channels, axis=-1) * 40 + 120
    blobs = np.sin(23 * x) * np.sin(17 * y)  # a grid of soft-edged patches, like objects
    scene += np.clip(blobs * 6, -1, 1)[..., None] * rng.uniform(-60, 60, 3).astype(np.float32)
    scene += rng.normal(0, 3, scene.shape).astype(np.float32)
    return np.clip(scene, 0, 247).astype(np.uint8)


def _triangle(k: int, span: int) -> int:
    """0, 1, ..., span, span - 1, ..., 0, 1, ...: moves by one every step."""
    return span - abs(k % (2 * span) - span)
