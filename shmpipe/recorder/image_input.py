"""Checking and converting one camera image on its way into a ring slot.

HWC uint8 RGB images are copied as they are; CHW uint8 and float arrays in [0, 1] are converted,
as LeRobot accepts them. A depth camera ((h, w, 1)) takes uint16 millimetres, (h, w) or
(h, w, 1). Every problem is a FrameError naming the camera and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shmpipe.errors import FrameError

_UINT8 = np.dtype(np.uint8)


def frame_writer(name: str, image, shape: tuple[int, int, int],
                 dtype: np.dtype = _UINT8) -> Callable[[np.ndarray], None]:  # fmt: skip
    """A function that writes `image` into an HWC array of `shape` and `dtype` (a ring slot),
    with whatever conversion it needs; raises FrameError for anything it cannot convert."""
    if dtype != _UINT8:
        return _depth_writer(name, image, shape)
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
    if image.dtype == np.uint16:
        raise FrameError(
            f"camera {name!r}: got a uint16 image for an RGB camera of shape {shape}; expected "
            "uint8 (or float in [0, 1]); depth cameras are declared with shape (h, w, 1)"
        )
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


def _depth_writer(name: str, image, shape: tuple[int, int, int]) -> Callable[[np.ndarray], None]:
    """frame_writer of a depth camera: uint16 millimetres, (h, w) or (h, w, 1), copied."""
    h, w, _ = shape
    if not isinstance(image, np.ndarray) or image.dtype != np.uint16:
        got = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise FrameError(
            f"camera {name!r}: a depth camera expects uint16 millimetres of shape {(h, w)} or "
            f"{(h, w, 1)}, got {got}"
        )
    if image.shape not in ((h, w), (h, w, 1)):
        raise FrameError(
            f"camera {name!r}: a depth camera expects shape {(h, w)} or {(h, w, 1)}, "
            f"got {image.shape}"
        )
    src = image.reshape(h, w, 1)
    return lambda out: np.copyto(out, src)
