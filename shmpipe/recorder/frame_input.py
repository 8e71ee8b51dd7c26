"""Checking what a caller hands to `add_frame`, before anything is written: the keys, and the
numeric features, which become vectors of their dtype (float32 unless declared otherwise, see
shmpipe.dataset.feature_types; camera images are checked where they are written,
shmpipe.recorder.camera_feed). Every problem raises FrameError (a ValueError) naming the key,
what was expected and what came, so the caller's episode stays valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from shmpipe.dataset.feature_types import FeatureSpec
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


def check_task(task: object) -> str:
    """The task text: a non-empty string that encodes as UTF-8 (no lone surrogates)."""
    if not isinstance(task, str) or not task:
        raise FrameError(f"task: expected a non-empty string, got {task!r}")
    try:
        task.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FrameError(f"task {task!r}: not valid text (it cannot be stored as UTF-8: "
                         f"{exc.reason} at position {exc.start})") from None  # fmt: skip
    return task


FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32 = np.dtype(np.float32)
SMALL_FEATURE = 64  # values checked in plain Python: cheaper than numpy calls on a cold cache


def to_feature_row(name: str, value, spec: FeatureSpec) -> np.ndarray | list[float]:
    """A numeric feature value as `spec.shape` values (a list, or an array) that its dtype
    holds exactly (floats finite); FrameError if it can't be. The caller stores it as that dtype.
    A small float32 vector of the right shape, the usual case, is only checked for NaN/inf."""
    shape = spec.shape
    if spec.dtype != "float32":
        return _typed_row(name, value, spec)
    if (value.__class__ is np.ndarray and value.dtype is _FLOAT32 and value.shape == shape
            and len(shape) == 1 and shape[0] <= SMALL_FEATURE  # no numpy calls: a cold cache
            and all(map(math.isfinite, value.tolist()))):  # fmt: skip
        return value
    arr = _as_array(name, value, shape, f"numbers of shape {shape}")
    if arr.dtype.kind not in "biuf":
        raise FrameError(f"feature {name!r}: expected real numbers, got dtype {arr.dtype}")
    if arr.size <= SMALL_FEATURE:
        values = arr.ravel().tolist()
        if all(map(math.isfinite, values)) and _fits_float32(values):
            return values
    elif np.isfinite(arr).all() and (arr.dtype.itemsize < 8 or np.abs(arr).max() <= FLOAT32_MAX):
        return arr
    flat = arr.ravel()
    bad = np.flatnonzero(~np.isfinite(flat)).tolist()
    if bad:
        raise FrameError(f"feature {name!r}: NaN or inf at positions {bad}")
    bad = np.flatnonzero(np.abs(flat) > FLOAT32_MAX).tolist()
    raise FrameError(f"feature {name!r}: values at positions {bad} do not fit float32 (largest "
                     f"magnitude {FLOAT32_MAX:.4g}); they would be stored as inf")  # fmt: skip


def _typed_row(name: str, value, spec: FeatureSpec) -> np.ndarray:
    """A value of a bool, integer or float64 feature, as an array of its dtype: bools are
    True/False (or 0/1), integers whole numbers in the dtype's range (a float is refused, not
    rounded), float64 finite real numbers."""
    want = f"{spec.dtype} values of shape {spec.shape}"
    if spec.dtype == "bool":
        want += " (True/False, or 0/1)"
    arr = _as_array(name, value, spec.shape, want)
    kind = arr.dtype.kind
    if spec.dtype == "bool" and (kind == "b" or kind in "iu" and np.isin(arr, (0, 1)).all()):
        return arr.astype(bool)
    if spec.integer and kind in "iu":
        limits = np.iinfo(spec.numpy)
        if arr.min() >= limits.min and arr.max() <= limits.max:
            return arr.astype(spec.numpy)
        raise FrameError(f"feature {name!r}: values {_shown(arr)} do not fit {spec.dtype} "
                         f"({limits.min}..{limits.max})")  # fmt: skip
    if spec.dtype == "float64" and kind in "biuf":
        bad = np.flatnonzero(~np.isfinite(arr.ravel())).tolist()
        if bad:
            raise FrameError(f"feature {name!r}: NaN or inf at positions {bad}")
        return arr.astype(np.float64)
    raise FrameError(f"feature {name!r}: expected {want}, got {_shown(arr)} (dtype {arr.dtype})")


def _as_array(name: str, value, shape: tuple[int, ...], want: str) -> np.ndarray:
    """`value` as an array of `shape` (a scalar or a flat sequence of as many values is
    reshaped); FrameError naming the feature and `want` otherwise."""
    if isinstance(value, (str, bytes)) or value is None:
        raise FrameError(f"feature {name!r}: expected {want}, got {value!r}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise FrameError(f"feature {name!r}: expected {want}: {exc}") from None
    if arr.shape == shape:
        return arr
    if arr.size == math.prod(shape) and arr.ndim <= 1:
        return arr.reshape(shape)
    raise FrameError(f"feature {name!r}: expected shape {shape}, got {arr.shape}")


def _shown(arr: np.ndarray) -> str:
    return repr(arr.ravel()[:8].tolist()) + ("..." if arr.size > 8 else "")


def _fits_float32(values: list) -> bool:
    return not values or (max(values) <= FLOAT32_MAX and min(values) >= -FLOAT32_MAX)


def to_capture_times(given: object, cameras: list[str]) -> list[float]:
    """add_frame's `capture_times` (camera -> seconds) as one finite float per camera, in the
    order of `cameras` (those whose times the dataset stores; none: the option is off)."""
    if not cameras:
        raise FrameError("capture_times: this Pipeline does not store them; create it with "
                         "capture_times=True")  # fmt: skip
    if not isinstance(given, Mapping) or given.keys() != set(cameras):
        keys = sorted(given) if isinstance(given, Mapping) else type(given).__name__
        raise FrameError(f"capture_times: expected camera -> seconds for exactly {cameras}, "
                         f"got {keys}")  # fmt: skip
    try:
        times = [float(given[camera]) for camera in cameras]
    except (TypeError, ValueError) as exc:
        raise FrameError(f"capture_times: expected seconds as numbers: {exc}") from None
    bad = [camera for camera, t in zip(cameras, times, strict=True) if not math.isfinite(t)]
    if bad:
        raise FrameError(f"capture_times: NaN or inf for {bad}")
    return times
