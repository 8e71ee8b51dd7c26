"""The recorder's settings checks, and the few numbers derived from the machine.

`ring_capacity` and `encoder_threads` are the visible formulas for how many slots a ring gets and
how many threads each encoder may use. Video options are shmpipe.video.encoder_config's.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Literal

from shmpipe.dataset.feature_types import specs_of
from shmpipe.dataset.writer import check_names
from shmpipe.errors import ConfigError

Backend = Literal["process", "thread"]

BACKEND_ENV = "SHMPIPE_BACKEND"
BACKENDS = ("process", "thread")
DEFAULT_RING_BUDGET_BYTES = 256 * 1024 * 1024  # shared by all cameras' rings
MAX_RING_SECONDS = 10.0  # more only costs memory: past this the overflow backlog takes over


def backend_from_env() -> str:
    backend = os.environ.get(BACKEND_ENV, "process").strip().lower() or "process"
    if backend not in BACKENDS:
        raise ConfigError(f"{BACKEND_ENV}={backend!r}: expected one of {BACKENDS}")
    return backend


def encoder_threads(num_cameras: int, cores: int | None = None) -> int:
    """Threads per encoder so that all encoders together use about one thread per core."""
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, round(cores / max(1, num_cameras)))


def ring_capacity(
    frame_bytes: int, fps: int, num_cameras: int, budget_bytes: int, minimum: int
) -> int:
    """Slots per ring: the camera's share of the memory budget, at most 10 seconds of frames,
    and never fewer than `minimum` (what the encoder needs, see shmpipe.video.probe) + 8."""
    share = budget_bytes // max(1, num_cameras)
    slots = min(share // max(1, frame_bytes), int(fps * MAX_RING_SECONDS))
    return max(minimum + 8, slots)


def check_layout(cameras: Mapping, features: Mapping | None,
                 feature_names: Mapping | None) -> tuple[dict, dict]:  # fmt: skip
    """Cameras (name -> (h, w, c)) as tuples of ints and features (name -> (n,) or ((n,),
    dtype)) as FeatureSpecs, names checked as the dataset requires."""
    if not cameras:
        raise ConfigError("cameras: expected at least one camera name -> (height, width, 3)")
    specs = specs_of(features)
    check_names(cameras, specs, feature_names)
    cams = {name: tuple(int(x) for x in shape) for name, shape in cameras.items()}
    return cams, specs


def check_stall_timeout(value: object) -> float:
    return float(check_at_least("stall_timeout_s", value, 0.1, "seconds >= 0.1"))


def check_choice(option: str, value: object, choices: tuple) -> object:
    if value not in choices:
        raise ConfigError(f"{option}: expected one of {choices}, got {value!r}")
    return value


def check_at_least(option: str, value: object, minimum: float, what: str) -> float | int:
    """A real number (not a bool) >= minimum, else ConfigError saying `what` was expected."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value >= minimum:
        return value
    raise ConfigError(f"{option}: expected {what}, got {value!r}")


def check_fifo_priority(value: object) -> int | None:
    if value is None or (
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 99
    ):
        return value
    raise ConfigError(
        f"control_priority: expected None or a SCHED_FIFO priority 1..99, got {value!r}"
    )


def check_ring_slots(ring_slots: object) -> int | None:
    if ring_slots is None:
        return None
    if isinstance(ring_slots, numbers.Integral) and not isinstance(ring_slots, bool):
        if ring_slots >= 2:
            return int(ring_slots)
    raise ConfigError(
        f"ring_slots: expected None (sized automatically) or an integer >= 2, got {ring_slots!r}"
    )


def check_backlog_bytes(backlog_bytes: object) -> int | None:
    """As given (bytes >= 0), or None: start() then takes an eighth of the machine's RAM, or
    less under a cgroup memory limit (shmpipe.recorder.memory_budget). Past it, backlogged
    frames spill to disk."""
    if backlog_bytes is None:
        return None
    return int(check_at_least("backlog_bytes", backlog_bytes, 0, "bytes >= 0"))
