"""Checking and converting what a caller hands to `add_frame`, before anything is written.

Camera frames: HWC uint8 RGB is the fast path (copied straight into a ring slot); CHW uint8 and
float arrays in [0, 1] (HWC or CHW) are converted on the way in, as LeRobot accepts them. Numeric
features become float32 vectors. Every problem raises FrameError (a ValueError) naming the
key, what was expected and what came, so the caller's episode stays valid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from shmpipe.errors import FrameError


def check_keys(frame: Mapping, expected: frozenset[str]) -> None:
    """`frame` must have exactly the `expected` keys (every camera and feature)."""
    if isinstance(frame, dict) and frame.keys() == expected:
        return
    if not isinstance(frame, Mapping):
        raise FrameError(
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
        raise FrameError(f"frame keys: {'; '.join(parts)}; expected exactly {sorted(expected)}")


def frame_writer(name: str, image, shape: tuple[int, int, int]) -> Callable[[np.ndarray], None]:
    """A function that writes `image` into an HWC uint8 array of `shape` (a ring slot), with
    whatever conversion it needs; raises FrameError for anything it cannot convert."""
    if not isinstance(image, np.ndarray):
        raise FrameError(
            f"camera {name!r}: expected a numpy array of shape {shape} (HWC uint8), "
            f"got {type(image).__name__}"
        )
    h, w, c = shape
    if image.shape == (h, w, c):
        src = image
    elif image.shape == (c, h, w):
        src = image.transpose(1, 2, 0)
    else:
        raise FrameError(
            f"camera {name!r}: expected shape {(h, w, c)} (HWC) or {(c, h, w)} (CHW), "
            f"got {image.shape}"
        )
    if image.dtype == np.uint8:
        return lambda out: np.copyto(out, src)
    if image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise FrameError(f"camera {name!r}: float image contains NaN or inf")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0.0 or hi > 1.0:
            raise FrameError(
                f"camera {name!r}: float images must lie in [0, 1], got values in [{lo}, {hi}]"
            )
        return lambda out: np.copyto(out, np.rint(src * 255.0), casting="unsafe")
    raise FrameError(
        f"camera {name!r}: expected dtype uint8 (or float in [0, 1]), got {image.dtype}"
    )


SMALL_FEATURE = 64  # values checked in plain Python: cheaper than numpy calls on a cold cache


def to_feature_row(name: str, value, shape: tuple[int, ...]) -> np.ndarray | list[float]:
    """A numeric feature value as `shape` numbers (a list for small features, else a float64
    array), every one finite; ValueError if it can't be. The caller stores it as float32."""
    if isinstance(value, (str, bytes)) or value is None:
        raise FrameError(f"feature {name!r}: expected numbers of shape {shape}, got {value!r}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise FrameError(f"feature {name!r}: expected numbers of shape {shape}: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise FrameError(f"feature {name!r}: expected real numbers, got dtype {arr.dtype}")
    if arr.shape != shape:
        if arr.size == math.prod(shape) and arr.ndim <= 1:
            arr = arr.reshape(shape)
        else:
            raise FrameError(f"feature {name!r}: expected shape {shape}, got {arr.shape}")
    if arr.size <= SMALL_FEATURE:
        values = arr.ravel().tolist()
        if all(map(math.isfinite, values)):
            return values
    elif np.isfinite(arr).all():
        return arr
    bad = np.flatnonzero(~np.isfinite(arr.ravel())).tolist()
    raise FrameError(f"feature {name!r}: NaN or inf at positions {bad}")
