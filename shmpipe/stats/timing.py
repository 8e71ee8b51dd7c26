"""When the frames of an episode were really captured, per camera: rate, repeats, gaps, skew.

From the capture times stored beside each row (or any camera -> times, one per row), pure numpy.
A repeat is a row whose capture time equals the previous row's (the camera had no new frame);
the capture rate counts distinct frames over the time they span, so it shows a camera that is
slower than the fps its frames are stamped at (LeRobot #2786) and gaps where it delivered none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

SLOW_TOLERANCE = 0.05  # a capture rate may fall short of the stamped fps by up to 5 %


@dataclass(frozen=True)
class CameraTiming:
    frames: int
    distinct: int  # frames whose capture time differs from the row before
    capture_fps: float  # distinct frames per second over the span of their capture times
    worst_gap_s: float  # the longest time between two consecutive distinct frames
    worst_gap_frame: int  # the row after that gap

    @property
    def repeats(self) -> int:
        return self.frames - self.distinct

    def is_slow(self, fps: float, tolerance: float = SLOW_TOLERANCE) -> bool:
        """Captured more slowly than `fps` by more than `tolerance` (needs two frames)."""
        return self.frames >= 2 and self.capture_fps < (1 - tolerance) * fps

    def line(self, fps: float) -> str:
        return (f"captured at {self.capture_fps:.2f} fps (stamped {fps:g}), {self.repeats} "
                f"repeats of {self.frames}, worst gap {self.worst_gap_s * 1000:.1f} ms before "
                f"frame {self.worst_gap_frame}")  # fmt: skip


@dataclass(frozen=True)
class EpisodeTiming:
    cameras: dict[str, CameraTiming]
    worst_skew_s: float  # per row, latest minus earliest camera; the worst row
    worst_skew_frame: int
    mean_skew_s: float

    def skew_line(self) -> str:
        return (f"skew between cameras: worst {self.worst_skew_s * 1000:.1f} ms at frame "
                f"{self.worst_skew_frame}, mean {self.mean_skew_s * 1000:.1f} ms")  # fmt: skip


def camera_timing(times: np.ndarray) -> CameraTiming:
    """The figures of one camera's capture times (seconds, one per row, in row order)."""
    t = np.asarray(times, np.float64)
    if len(t) == 0:
        return CameraTiming(0, 0, 0.0, 0.0, 0)
    steps = np.diff(t)
    new = steps != 0
    distinct = 1 + int(np.count_nonzero(new))
    span = float(t[-1] - t[0])
    rate = (distinct - 1) / span if span > 0 else 0.0
    worst = int(np.argmax(steps)) if len(steps) else -1
    gap = float(steps[worst]) if worst >= 0 else 0.0
    return CameraTiming(len(t), distinct, rate, gap, worst + 1)


def episode_timing(times: Mapping[str, np.ndarray]) -> EpisodeTiming:
    """Every camera's figures and the skew between cameras, row by row."""
    cameras = {name: camera_timing(t) for name, t in times.items()}
    stacked = np.stack([np.asarray(t, np.float64) for t in times.values()])
    if stacked.shape[1] == 0:
        return EpisodeTiming(cameras, 0.0, 0, 0.0)
    skew = stacked.max(axis=0) - stacked.min(axis=0)
    worst = int(np.argmax(skew))
    return EpisodeTiming(cameras, float(skew[worst]), worst, float(skew.mean()))
