"""Rolling capture (`Pipeline(preroll_s=N)`): a pre-roll kept encoded, not as raw frames.

Frames are encoded as they come whether or not an episode is kept. The take that holds them is
ROLLING (shmpipe.recorder.take): its encoders cut a new video segment every SEGMENT_S second
(a keyframe-aligned file: each segment is a fresh codec) and delete the segments that fell out
of the window; its rows are trimmed the same way; the stats worker snapshots each camera's
cumulative histogram at every segment boundary (shmpipe.ipc.histogram_store). `keep()` makes
the take OPEN from the start of the segment holding the frame N s before the newest: the
kept pre-roll is N s rounded up to a whole segment (N to N + 1 s at the default), never less.
Nothing is re-encoded or replayed at keep (one message per encoder), so the loop pays nothing;
at finish the encoders join the kept segments (a remux, timestamps from 0) and the episode's
image stats are the final tally minus the snapshot at the first kept frame, exactly the kept
frames. What the window holds is its encoded size, on disk (the segments from the window's
start: at most N + 2 s per camera; 29.5 MB per minute per 480x640 camera-like stream at the
default settings, libsvtav1 crf 30 preset 12 g 2: `python -m bench.rolling`), plus N + 1 s of
numeric rows in memory; 60 s of 3 such cameras: ~90 MB. Segments are whole files, each from a
freshly opened codec: any segment start is a cut point whatever the GOP, and cutting every
second costs no more CPU or bytes than one long stream (measured at 480x640). Why not the
alternatives: raw frames cost ~26 MB per second of 3 cameras and a burst at keep; one long
file per take cannot lose its start without a rewrite; and one codec fed into a new container
per segment depends on how each PyAV release (15 to 19) ties a codec to its container.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from shmpipe.dataset.rows import EpisodeRows
from shmpipe.errors import ConfigError, WorkerError
from shmpipe.ipc.histogram_store import StatsStore
from shmpipe.video.rolling_segments import window_start

SEGMENT_S = 1.0  # the granularity of the kept pre-roll and of the window's trimming
SETTLE_S = 30.0  # at most, for the stats worker to reach the first kept frame at finish


@dataclass(frozen=True)
class RollPlan:
    """The window (`window` frames), the segment length and the stats snapshots per camera."""

    window: int
    segment: int
    snapshots: int


def check_preroll(preroll_s: float | None) -> float | None:
    if preroll_s is None:
        return None
    if not isinstance(preroll_s, int | float) or not math.isfinite(preroll_s) or preroll_s <= 0:
        raise ConfigError(f"preroll_s must be a positive number of seconds or None, not "
                          f"{preroll_s!r}")  # fmt: skip
    return float(preroll_s)


def plan(preroll_s: float, fps: int, ring_slots: int) -> RollPlan:
    """A snapshot slot for every segment boundary the stats worker may pass before the control
    process reads the one it needs: the window, a ring of frames it may lag by and then count
    between two add_frame calls, and a margin."""
    window = max(1, round(preroll_s * fps))
    segment = max(1, round(SEGMENT_S * fps))
    return RollPlan(window, segment, (window + ring_slots) // segment + 4)


class Roll:
    """One rolling take's window: which frames its rows hold, where a keep starts it, and the
    histograms of the frames a keep dropped."""

    def __init__(self, plan: RollPlan, store: StatsStore, take: int) -> None:
        self.plan, self._store, self._take = plan, store, take
        self.dropped = 0  # the frame index of the rows' first row
        self.kept_from = -1  # the first kept frame once kept
        self._before: list[np.ndarray | None] = []  # per camera: histogram of frames < kept_from

    def window_start(self, frames: int) -> int:
        """The start of the segment holding frame `frames` - window (0 before a full window);
        the encoders delete only what comes before it (shmpipe.video.rolling_segments)."""
        return window_start(frames, self.plan.window, self.plan.segment)

    def trim(self, rows: EpisodeRows) -> None:
        """Before a frame is added: while not kept, drop the rows before the window, at each
        segment boundary; once kept, pick up the histogram snapshots still missing."""
        if self.kept_from >= 0:
            self.poll()
            return
        frames = self.dropped + rows.num_frames
        if frames % self.plan.segment == 0:
            self._drop(rows, self.window_start(frames))

    def _drop(self, rows: EpisodeRows, first: int) -> None:
        if first > self.dropped:
            rows.drop_front(first - self.dropped)
            self.dropped = first

    def keep(self, rows: EpisodeRows) -> int:
        """Keep the window: the rows start at its first frame (returned), its histogram is
        taken from the stats snapshots as soon as the stats worker wrote them."""
        first = self.window_start(self.dropped + rows.num_frames)
        self._drop(rows, first)
        self.kept_from = first
        self._before = [None] * self._store.num_cameras
        self.poll()
        return first

    def settle(self, feeds) -> None:
        """Before the kept take finishes: hold the histograms of the frames before the first
        kept one. Normally they are held already (add_frame picks them up); if the stats worker
        is still behind that frame, wait for it, feeding it backlogged frames: once the take is
        finished it may count past many more segments (a background finish: the next take's
        too) before anyone looks, and its snapshot ring would no longer hold them."""
        deadline = time.monotonic() + SETTLE_S
        self.poll()
        while any(before is None for before in self._before):
            if time.monotonic() > deadline:
                raise WorkerError(f"the stats worker did not reach the first kept frame "
                                  f"({self.kept_from}) within {SETTLE_S:.0f} s")  # fmt: skip
            for feed in feeds:
                if feed.backlog:
                    feed.drain()
            time.sleep(0.001)
            self.poll()

    def poll(self) -> None:
        for cam, before in enumerate(self._before):
            if before is None:
                self._before[cam] = self._store.snapshot(cam, self._take, self.kept_from)

    def kept_histograms(self, final: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each camera's histogram of the kept frames only: the final tally minus the frames
        before the first kept one."""
        self.poll()
        out = {}
        for cam, (name, histogram) in enumerate(final.items()):
            before = self._before[cam]
            if before is None:
                raise WorkerError(f"camera {name!r}: the stats of the frames before the kept "
                                  f"frame {self.kept_from} are gone (the stats worker "
                                  "overwrote its snapshot); the episode's stats would not "
                                  "be exact")  # fmt: skip
            out[name] = histogram - before
        return out
