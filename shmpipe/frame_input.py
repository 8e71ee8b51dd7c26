"""Checking and converting what a caller hands to `add_frame`, before anything is written.

Camera frames: HWC uint8 RGB is the fast path (copied straight into a ring slot); CHW uint8 and
float arrays in [0, 1] (HWC or CHW) are converted on the way in, as LeRobot accepts them. Numeric
features become float32 vectors. Every problem raises ValueError naming the key, what was
expected and what came, so the caller's episode stays valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


def check_keys(frame: Mapping, cameras: Mapping, features: Mapping) -> None:
    if not isinstance(frame, Mapping):
        raise ValueError(
            f"add_frame expects a dict of camera/feature name -> array, got {type(frame).__name__}"
        )
    expected = set(cameras) | set(features)
    missing = sorted(expected - set(frame))
    unknown = sorted(set(frame) - expected)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if unknown:
            parts.append(f"unknown {unknown}")
        raise ValueError(f"frame keys: {'; '.join(parts)}; expected exactly {sorted(expected)}")


def camera_layout(name: str, image, shape: tuple[int, int, int]) -> str:
    """Which conversion `image` needs to become an HWC uint8 frame of `shape`:
    'hwc8' (none), 'chw8', 'hwcf' or 'chwf'. Raises ValueError for anything else."""
    if not isinstance(image, np.ndarray):
        raise ValueError(
            f"camera {name!r}: expected a numpy array of shape {shape} (HWC uint8), "
            f"got {type(image).__name__}"
        )
    h, w, c = shape
    if image.shape == (h, w, c):
        layout = "hwc"
    elif image.shape == (c, h, w):
        layout = "chw"
    else:
        raise ValueError(
            f"camera {name!r}: expected shape {(h, w, c)} (HWC) or {(c, h, w)} (CHW), "
            f"got {image.shape}"
        )
    if image.dtype == np.uint8:
        return layout + "8"
    if image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise ValueError(f"camera {name!r}: float image contains NaN or inf")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"camera {name!r}: float images must lie in [0, 1], got values in [{lo}, {hi}]"
            )
        return layout + "f"
    raise ValueError(
        f"camera {name!r}: expected dtype uint8 (or float in [0, 1]), got {image.dtype}"
    )


def write_frame(image: np.ndarray, layout: str, out: np.ndarray) -> None:
    """Write `image` into `out` (an HWC uint8 slot) converting per `layout`; the only copy."""
    src = image.transpose(1, 2, 0) if layout.startswith("chw") else image
    if layout.endswith("8"):
        np.copyto(out, src)
    else:
        np.copyto(out, np.rint(src * 255.0), casting="unsafe")


def to_feature_row(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    """A numeric feature value as a float32 vector of `shape`; ValueError if it can't be."""
    if isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"feature {name!r}: expected numbers of shape {shape}, got {value!r}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"feature {name!r}: expected numbers of shape {shape}: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"feature {name!r}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.shape != tuple(shape):
        if arr.size == math.prod(shape) and arr.ndim <= 1:
            arr = arr.reshape(shape)
        else:
            raise ValueError(f"feature {name!r}: expected shape {tuple(shape)}, got {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr.ravel())).tolist()
        raise ValueError(f"feature {name!r}: NaN or inf at positions {bad}")
    return arr.astype(np.float32)
