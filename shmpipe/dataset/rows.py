"""The numeric rows of the open episode, kept in the control process, and their parquet table.

Rows are small (a few floats per frame), so they live in preallocated arrays that double when
full, before a frame is added, never while; nothing else per frame allocates. The parquet schema
is LeRobot v3.0's: features in their types (shmpipe.dataset.feature_types: (1,)
as a plain column, (n,) as a fixed-size list), then timestamp, frame_index, episode_index, index,
task_index.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from shmpipe.dataset.capture_times import column as capture_column
from shmpipe.dataset.feature_types import FeatureSpec, specs_of
from shmpipe.errors import UsageError

log = logging.getLogger("shmpipe")

INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")


LEROBOT_TOLERANCE_S = 1e-4  # LeRobotDataset's default tolerance_s (a row's time vs its frame's)
ROWS_SEARCHED = 1 << 16


@functools.lru_cache(maxsize=16)
def stamp_limit(fps: int) -> int | None:
    """The first frame index whose float32 timestamp (what the format stores) is
    LEROBOT_TOLERANCE_S or more from i / fps: past 2,048 s float32 steps by 2.4e-4 s (below,
    it is within 6.1e-5 s). LeRobot's loaders (0.4.4, 0.6.1) still find such a row's frame,
    since they compare its timestamp with the frame's time in float32 too (torch.tensor), but
    a reader that compares at full precision with LeRobot's tolerance does not. None if no
    such frame within a day (an fps that is a power of two stamps exactly)."""
    for low in range(2048 * fps, 86400 * fps, ROWS_SEARCHED):
        exact = np.arange(low, min(low + ROWS_SEARCHED, 86400 * fps)) / fps
        off = np.abs(exact.astype(np.float32) - exact)
        bad = np.flatnonzero(off >= LEROBOT_TOLERANCE_S)
        if bad.size:
            return low + int(bad[0])
    return None


class EpisodeRows:
    """The open episode's numeric rows: one array per feature (of its dtype), and the task
    indices.

    `append` writes into room made beforehand by `ensure_room` (or `reserve`) and never
    allocates, so a caller can grow the arrays first and then add a frame all or nothing.
    `capture`: cameras whose capture times (float64 seconds) each row also holds.
    """

    def __init__(self, features: dict[str, FeatureSpec], initial_capacity: int = 1024,
                 capture: Sequence[str] = (), fps: int | None = None) -> None:  # fmt: skip
        self.features = specs_of(features)  # (n,) means float32
        self.capture = list(capture)
        self._capacity = max(1, initial_capacity)
        self._values = self._arrays(self._capacity)
        self._times = np.empty((self._capacity, len(self.capture)), np.float64)
        self._task_index = np.empty(self._capacity, np.int64)
        self.num_frames = 0
        self._fps, self._stamp_limit = fps, stamp_limit(fps) if fps else None
        self._plan_look()  # _next_look: the row count at which ensure_room looks again

    def ensure_room(self) -> None:
        """Make room for one more row (doubling the arrays when they are full); say so once
        when the episode reaches stamp_limit."""
        if self.num_frames == self._next_look:
            if self.num_frames == self._capacity:
                self.reserve(2 * self._capacity)
            if self.num_frames == self._stamp_limit:
                log.warning(
                    "the episode reaches %.0f s (%d frames at %d fps): from this row on, the "
                    "format's float32 timestamps are %g s or more from i/fps (LeRobot's "
                    "tolerance). LeRobot's own loader still matches them (it compares in "
                    "float32); a reader that compares at full precision does not. Episodes "
                    "under %d min avoid it", self.num_frames / self._fps, self.num_frames,
                    self._fps, LEROBOT_TOLERANCE_S, self.num_frames // self._fps // 60)  # fmt: skip
            self._plan_look()

    def _plan_look(self) -> None:
        limit = self._stamp_limit
        ahead = limit is not None and self.num_frames < limit <= self._capacity
        self._next_look = limit if ahead else self._capacity

    def reserve(self, rows: int) -> None:
        """Room for `rows` rows in all. If allocating fails, nothing has changed."""
        if rows <= self._capacity:
            return
        n = self.num_frames
        values = self._arrays(rows)
        task_index = np.empty(rows, np.int64)
        times = np.empty((rows, len(self.capture)), np.float64)
        for name, bigger in values.items():
            bigger[:n] = self._values[name][:n]
        task_index[:n] = self._task_index[:n]
        times[:n] = self._times[:n]
        self._values, self._task_index, self._capacity = values, task_index, rows
        self._times = times

    def _arrays(self, rows: int) -> dict[str, np.ndarray]:
        return {n: np.empty((rows, s.width), s.numpy) for n, s in self.features.items()}

    def append(self, row: dict[str, np.ndarray], task_index: int,
               capture_times: Sequence[float] | None = None) -> None:  # fmt: skip
        """Add a row: a value for every feature (and a capture time per `capture` camera, in
        its order). Needs room (ensure_room); allocates nothing. A value that does not fit
        raises, and the row is not added."""
        i = self.num_frames
        if i == self._capacity:
            raise UsageError("EpisodeRows.append: no room left; call ensure_room() first")
        for name, values in self._values.items():
            values[i] = row[name]
        if self.capture:
            self._times[i] = capture_times
        self._task_index[i] = task_index
        self.num_frames = i + 1

    def clear(self) -> None:
        self.num_frames = 0
        self._plan_look()

    def drop_front(self, rows: int) -> None:
        """Forget the first `rows` rows (rolling capture's window moved on)."""
        rows, n = min(rows, self.num_frames), self.num_frames
        for values in (*self._values.values(), self._times, self._task_index):
            values[: n - rows] = values[rows:n]
        self.num_frames = n - rows
        self._plan_look()

    def task_indices(self) -> np.ndarray:
        """The rows' task indices (a view; valid until the next append or clear)."""
        return self._task_index[: self.num_frames]

    def values(self, name: str) -> np.ndarray:
        return self._values[name][: self.num_frames]

    def columns(self, fps: int, episode_index: int, first_index: int) -> dict[str, np.ndarray]:
        """Every column of the episode's rows, features first, as LeRobot lays them out."""
        n = self.num_frames
        frame_index = np.arange(n, dtype=np.int64)
        cols = {name: self.values(name) for name in self.features}
        for k, camera in enumerate(self.capture):
            cols[capture_column(camera)] = self._times[:n, k].copy()
        cols["timestamp"] = (frame_index / fps).astype(np.float32)
        cols["frame_index"] = frame_index
        cols["episode_index"] = np.full(n, episode_index, np.int64)
        cols["index"] = frame_index + first_index
        cols["task_index"] = self._task_index[:n].copy()
        return cols


def _hf_features(features: dict[str, FeatureSpec], capture: Sequence[str]) -> dict:
    out = {name: spec.hf_feature() for name, spec in features.items()}
    for name in capture:
        out[name] = {"dtype": "float64", "_type": "Value"}
    out["timestamp"] = {"dtype": "float32", "_type": "Value"}
    for name in INDEX_COLUMNS[1:]:
        out[name] = {"dtype": "int64", "_type": "Value"}
    return out


def _fingerprint(columns: dict[str, np.ndarray]) -> str:
    """A 16-hex-digit tag like the one `datasets` stores; names the rows (first index, count)."""
    index = columns["index"]
    first = int(index[0]) if len(index) else -1
    key = f"shmpipe rows {first} {len(index)} {sorted(columns)}"
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def rows_table(columns: dict[str, np.ndarray], features: dict[str, FeatureSpec],
               capture: Sequence[str] = ()) -> pa.Table:  # fmt: skip
    """An arrow table with LeRobot's schema and its `huggingface` schema metadata; `capture`:
    the capture-time columns (float64 scalars), after the features."""
    arrays, fields = [], []
    for name, spec in features.items():
        arrays.append(spec.arrow_array(columns[name]))
        fields.append(pa.field(name, spec.arrow_type()))
    for name in capture:
        arrays.append(pa.array(np.asarray(columns[name], np.float64)))
        fields.append(pa.field(name, pa.float64()))
    for name in INDEX_COLUMNS:
        arr = columns[name]
        arrays.append(pa.array(arr))
        fields.append(pa.field(name, pa.float32() if name == "timestamp" else pa.int64()))
    hf_info = {
        "info": {"features": _hf_features(features, capture)},
        "fingerprint": _fingerprint(columns),
    }
    metadata = {"huggingface": json.dumps(hf_info)}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))
