"""`shmpipe verify --timing`: when each camera really captured each episode's frames.

Reads the capture-time columns (shmpipe.dataset.capture_times) of every episode's rows and
reports per camera the capture rate, repeats and worst gap, and the skew between cameras
(shmpipe.stats.timing). An episode captured more slowly than its stamped fps by more than the
tolerance is a problem: its frames are stamped at a rate they were not captured at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe.dataset import capture_times, layout
from shmpipe.dataset.reader import data_rows
from shmpipe.errors import ConfigError
from shmpipe.stats.timing import SLOW_TOLERANCE, EpisodeTiming, episode_timing


@dataclass
class TimingReport:
    """Per episode its timing figures; `slow` lists (episode, camera, message) to flag."""

    fps: float
    episodes: dict[int, EpisodeTiming] = field(default_factory=dict)
    slow: list[tuple[int, str, str]] = field(default_factory=list)
    note: str | None = None  # why there are no figures

    def lines(self) -> list[str]:
        if self.note:
            return [f"timing: {self.note}"]
        out = []
        for episode, timing in self.episodes.items():
            out.append(f"episode {episode} timing: {timing.skew_line()}")
            for camera, figures in timing.cameras.items():
                out.append(f"  camera {camera}: {figures.line(self.fps)}")
        return out

    def as_json(self) -> dict:
        def camera(f) -> dict:
            return {**vars(f), "repeats": f.repeats}

        episodes = {
            str(e): {"cameras": {c: camera(f) for c, f in t.cameras.items()},
                     "worst_skew_s": t.worst_skew_s, "worst_skew_frame": t.worst_skew_frame,
                     "mean_skew_s": t.mean_skew_s}
            for e, t in self.episodes.items()
        }  # fmt: skip
        return {"note": self.note, "episodes": episodes, "slow": self.slow}


def check_timing(root: str | Path, tolerance: float = SLOW_TOLERANCE) -> TimingReport:
    """The timing figures of every episode of the dataset at `root` (ConfigError if its
    metadata cannot be read), flagging cameras slower than fps by more than `tolerance`."""
    root = Path(root)
    try:
        info = json.loads((root / layout.INFO_PATH).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{root}: cannot read {layout.INFO_PATH}: {error}") from None
    fps, cameras = float(info["fps"]), capture_times.cameras_of(info)
    report = TimingReport(fps)
    if not cameras:
        report.note = "no capture times stored (recorded without capture_times)"
        return report
    columns = [capture_times.column(c) for c in cameras]
    files = data_rows(root, int(info.get("total_episodes", 0)))
    wanted = [*columns, "episode_index", "frame_index"]
    tables = [pq.read_table(path, columns=wanted) for path in files]
    if not tables:
        report.note = "no episodes"
        return report
    table = pa.concat_tables(tables).sort_by([("episode_index", "ascending"),
                                              ("frame_index", "ascending")])  # fmt: skip
    episode_index = table.column("episode_index").to_numpy()
    values = {c: table.column(n).to_numpy() for c, n in zip(cameras, columns, strict=True)}
    starts = np.flatnonzero(np.r_[True, episode_index[1:] != episode_index[:-1]])
    for a, b in zip(starts, [*starts[1:], len(episode_index)], strict=True):
        episode = int(episode_index[a])
        timing = episode_timing({c: v[a:b] for c, v in values.items()})
        report.episodes[episode] = timing
        for camera, figures in timing.cameras.items():
            if figures.is_slow(fps, tolerance):
                message = (f"captured at {figures.capture_fps:.2f} fps, below the stamped "
                           f"{fps:g} fps by more than {tolerance:.0%} ({figures.repeats} "
                           f"repeats, worst gap {figures.worst_gap_s:.3f} s before frame "
                           f"{figures.worst_gap_frame})")  # fmt: skip
                report.slow.append((episode, camera, message))
    return report
