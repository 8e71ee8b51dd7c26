"""Deterministic camera-like frames and robot signals for the benchmarks.

Encoder load depends on content far more than on anything shmpipe does, so flat gradients would
flatter every variant. Each camera instead pans slowly across a real photo from scikit-image and
adds sensor noise (sigma 2); frame (camera, t) is the same in every process that asks for it.
"""

from __future__ import annotations

import math

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
PAN_MARGIN = 0.25  # the source is this much larger than the frame, in each direction
PAN_SPEED = 1.5  # peak pan speed, pixels per frame
NOISE_SIGMA = 2.0
STATE_DIM = 6

# Binomial(16, 1/2) - 8 has mean 0 and sigma exactly 2: popcount of 16 random bits, by table.
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int16)
_NOISE_LUT = (_POPCOUNT8[:, None] + _POPCOUNT8[None, :]).reshape(-1) - 8


def _source_image(camera: int, height: int, width: int) -> np.ndarray:
    """The camera's photo, resized (once) to cover the frame plus the pan margin."""
    import skimage.data
    from PIL import Image

    photo = getattr(skimage.data, PHOTOS[camera % len(PHOTOS)])()[..., :3]
    if camera >= len(PHOTOS):  # more cameras than photos: mirror so no two cameras match
        photo = photo[:, ::-1]
    out_h = math.ceil(height * (1 + PAN_MARGIN))
    out_w = math.ceil(width * (1 + PAN_MARGIN))
    scale = max(out_h / photo.shape[0], out_w / photo.shape[1])
    size = (math.ceil(photo.shape[1] * scale), math.ceil(photo.shape[0] * scale))
    big = np.asarray(Image.fromarray(np.ascontiguousarray(photo)).resize(size, Image.BICUBIC))
    top, left = (big.shape[0] - out_h) // 2, (big.shape[1] - out_w) // 2
    return np.ascontiguousarray(big[top : top + out_h, left : left + out_w])


class CameraFrames:
    """Frame t of one synthetic camera: a window panning across a photo, plus sensor noise."""

    def __init__(self, camera: int, height: int, width: int, seed: int = 0):
        self.camera, self.height, self.width, self.seed = camera, height, width, seed
        self._source = _source_image(camera, height, width)
        self._margin_y = self._source.shape[0] - height
        self._margin_x = self._source.shape[1] - width
        self._scratch = np.empty((height, width, 3), dtype=np.int16)

    def _offset(self, t: int) -> tuple[int, int]:
        """Smooth back-and-forth pan; x and y use different periods and a per-camera phase."""
        phase = 0.7 * self.camera
        period_x = max(self._margin_x, 1) * math.pi / PAN_SPEED
        period_y = 1.37 * max(self._margin_y, 1) * math.pi / PAN_SPEED
        x = self._margin_x * (0.5 - 0.5 * math.cos(2 * math.pi * t / period_x + phase))
        y = self._margin_y * (0.5 - 0.5 * math.cos(2 * math.pi * t / period_y + phase))
        return round(y), round(x)

    def frame(self, t: int, out: np.ndarray | None = None) -> np.ndarray:
        """HxWx3 uint8 frame t; written into `out` when given (~2 ms at 480x640)."""
        y, x = self._offset(t)
        window = self._source[y : y + self.height, x : x + self.width]
        rng = np.random.default_rng([self.seed, self.camera, t])
        raw = rng.bit_generator.random_raw(-(-window.size // 4))  # 4 uint16 draws per uint64
        bits = raw.view(np.uint16)[: window.size].reshape(window.shape)
        np.take(_NOISE_LUT, bits, out=self._scratch)
        np.add(self._scratch, window, out=self._scratch)
        np.clip(self._scratch, 0, 255, out=self._scratch)
        if out is None:
            return self._scratch.astype(np.uint8)
        out[...] = self._scratch
        return out


def episode_frames(
    num_cameras: int, num_frames: int, height: int, width: int, seed: int = 0
) -> list[np.ndarray]:
    """All frames of an episode, one (num_frames, H, W, 3) uint8 array per camera.

    Generate these before timing starts: the scenario must not measure frame synthesis.
    """
    episode = []
    for camera in range(num_cameras):
        source = CameraFrames(camera, height, width, seed)
        frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
        for t in range(num_frames):
            source.frame(t, out=frames[t])
        episode.append(frames)
    return episode


def state_action(t: int, dim: int = STATE_DIM) -> tuple[np.ndarray, np.ndarray]:
    """Joint-like float32 (dim,) state and action at tick t: smooth sines, action leads state."""
    joints = np.arange(dim, dtype=np.float32)
    phase = np.float32(t / 30.0)
    state = np.sin(0.5 * phase * (1 + 0.1 * joints) + joints).astype(np.float32)
    action = np.sin(0.5 * (phase + 0.1) * (1 + 0.1 * joints) + joints).astype(np.float32)
    return state, action


def frame_maker(names: list[str], episode: list[np.ndarray], num_frames: int, loan=None):
    """make_frame(t) for the control loop: camera name -> frame t, plus state and action. With
    `loan` (pipe.loan), each image is first copied into the camera's loaned ring slot, as a
    driver capturing in place would (untimed: the loop times add_frame alone)."""
    signals = [state_action(t) for t in range(num_frames)]

    def make_frame(t: int) -> dict[str, np.ndarray]:
        frame = {name: episode[c][t] for c, name in enumerate(names)}
        if loan is not None:
            for name, image in frame.items():
                frame[name] = loan(name)
                np.copyto(frame[name], image)
        frame["observation.state"], frame["action"] = signals[t]
        return frame

    return make_frame


def add_camera_arguments(parser) -> None:
    """--cameras/--height/--width/--fps, the same defaults (3 cameras 480x640 at 30 Hz) in every
    bench, so their tables compare."""
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--fps", type=int, default=30)
