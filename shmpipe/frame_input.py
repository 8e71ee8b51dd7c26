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


def check_keys(frame: Mapping, expected: frozenset[str]) -> None:
    """`frame` must have exactly the `expected` keys (every camera and feature)."""
    if isinstance(frame, dict) and frame.keys() == expected:
        return
    if not isinstance(frame, Mapping):
        raise ValueError(
            f"add_frame expects a dict of camera/feature name -> array, got {type(frame).__name__}"
        )
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


SMALL_FEATURE = 64  # values checked in plain Python: cheaper than numpy calls on a cold cache


def to_feature_row(name: str, value, shape: tuple[int, ...]) -> np.ndarray | list[float]:
    """A numeric feature value as `shape` numbers (a list for small features, else a float64
    array), every one finite; ValueError if it can't be. The caller stores it as float32."""
    if isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"feature {name!r}: expected numbers of shape {shape}, got {value!r}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"feature {name!r}: expected numbers of shape {shape}: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"feature {name!r}: expected real numbers, got dtype {arr.dtype}")
    if arr.shape != shape:
        if arr.size == math.prod(shape) and arr.ndim <= 1:
            arr = arr.reshape(shape)
        else:
            raise ValueError(f"feature {name!r}: expected shape {shape}, got {arr.shape}")
    if arr.size <= SMALL_FEATURE:
        values = arr.ravel().tolist()
        if all(map(math.isfinite, values)):
            return values
    elif np.isfinite(arr).all():
        return arr
    bad = np.flatnonzero(~np.isfinite(arr.ravel())).tolist()
    raise ValueError(f"feature {name!r}: NaN or inf at positions {bad}")
