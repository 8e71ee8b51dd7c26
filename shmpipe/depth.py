"""Depth cameras: uint16 millimetres stored as LeRobot's main stores depth.

LeRobot (datasets/depth_utils.py, configs/video.py DepthEncoderConfig) quantizes depth to 12-bit
codes in log space, `rint((log(d + shift) - log(min + shift)) / (log(max + shift) -
log(min + shift)) * 4095)` clipped to 0..4095 (all in mm, float32), and encodes the codes as
gray12le with lossless HEVC (x265 `lossless=1`). A uint16 input has 65536 values, so both ways
are tables: `quantize` is one lookup per pixel, `dequantize(codes)` what LeRobot's loader
returns in millimetres. Frames stay millimetres in the ring; the workers quantize.
Pure numpy and a layer of its own: the encoder (video), the histograms (stats) and info.json
(dataset) all code depth alike, and none of them imports another for it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

PIX_FMT = "gray12le"
VCODEC = "hevc"
QMAX = 4095
BINS = QMAX + 1
DEPTH_MIN, DEPTH_MAX, SHIFT, USE_LOG = 0.01, 10.0, 3.5, True  # metres, LeRobot's defaults
UNIT = "mm"
MM_PER_METRE = 1000.0
EXTRA_OPTIONS = {"x265-params": "lossless=1"}
CHANNELS = 1  # a camera of shape (h, w, 1) is a depth camera: uint16 mm


def is_depth(shape: tuple[int, ...]) -> bool:
    return shape[2] == CHANNELS


def dtype_of(shape: tuple[int, ...]) -> np.dtype:
    """What a camera's ring slots hold: uint16 millimetres for depth, uint8 RGB otherwise."""
    return np.dtype(np.uint16) if is_depth(shape) else np.dtype(np.uint8)


@functools.cache
def _code_of_mm() -> np.ndarray:
    """Code of every uint16 millimetre value, by LeRobot's float32 arithmetic."""
    depth = np.arange(65536, dtype=np.uint16).astype(np.float32)
    lo, hi = np.float32(DEPTH_MIN * MM_PER_METRE), np.float32(DEPTH_MAX * MM_PER_METRE)
    shift = np.float32(SHIFT * MM_PER_METRE)
    log_min, log_max = math.log(float(lo + shift)), math.log(float(hi + shift))
    norm = (np.log(depth + shift) - log_min) / (log_max - log_min)
    return np.rint(norm * QMAX).clip(0, QMAX).astype(np.uint16)


@functools.cache
def _mm_of_code() -> np.ndarray:
    """Millimetres of every code, by LeRobot's dequantize_depth (numpy path, output "mm")."""
    codes = np.arange(BINS, dtype=np.uint16)
    log_min, log_max = math.log(DEPTH_MIN + SHIFT), math.log(DEPTH_MAX + SHIFT)
    buf = np.empty(codes.shape, dtype=np.float32)
    np.multiply(codes, (log_max - log_min) / QMAX, out=buf)
    np.add(buf, log_min, out=buf)
    np.exp(buf, out=buf)
    np.subtract(buf, SHIFT, out=buf)
    np.clip(buf, DEPTH_MIN, DEPTH_MAX, out=buf)
    np.multiply(buf, MM_PER_METRE, out=buf)
    np.rint(buf, out=buf)
    np.clip(buf, 0.0, 65535, out=buf)
    return buf.astype(np.uint16)


def quantize(frame_mm: np.ndarray) -> np.ndarray:
    """12-bit codes (uint16, a new array) of a uint16 millimetre frame of any shape."""
    return _code_of_mm()[frame_mm]


def dequantize(codes: np.ndarray) -> np.ndarray:
    """uint16 millimetres LeRobot's loader returns for these codes."""
    return _mm_of_code()[codes]


def bin_values() -> np.ndarray:
    """The millimetre value every histogram bin (code) stands for."""
    return _mm_of_code()


def feature_info(height: int, width: int, fps: int) -> dict:
    """info.json's `info` of a depth video feature, as LeRobot's get_video_info writes it for a
    DepthEncoderConfig, plus its depth_unit."""
    return {
        "video.height": height,
        "video.width": width,
        "video.codec": VCODEC,
        "video.pix_fmt": PIX_FMT,
        "video.fps": fps,
        "video.channels": CHANNELS,
        "has_audio": False,
        "video.g": 2,
        "video.crf": 30,
        "video.preset": None,
        "video.fast_decode": 0,
        "video.video_backend": "pyav",
        "video.extra_options": dict(EXTRA_OPTIONS),
        "video.depth_min": DEPTH_MIN,
        "video.depth_max": DEPTH_MAX,
        "video.shift": SHIFT,
        "video.use_log": USE_LOG,
        "is_depth_map": True,
        "depth_unit": UNIT,
    }
