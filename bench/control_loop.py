"""The control loop a robot runs: add one frame per tick, paced at real time or flat out.

Every call of add_frame is timed, and so is each tick's wake-up lateness (actual wake time minus
scheduled time) when paced. A sampler (e.g. pipe.status) is called ~10 times a second from the
loop itself, as a progress display would be; its own cost is recorded separately.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoopTrace:
    """What one run of the loop measured; times in ms, sample times in s from loop start."""

    add_frame_ms: list[float] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    sample_times: list[float] = field(default_factory=list)
    samples: list[Any] = field(default_factory=list)
    sample_ms: list[float] = field(default_factory=list)
    duration_s: float = 0.0


def run_loop(
    add_frame: Callable[[Any], None],
    make_frame: Callable[[int], Any],
    num_ticks: int,
    fps: float,
    paced: bool,
    sample: Callable[[], Any] | None = None,
    sample_hz: float = 10.0,
) -> LoopTrace:
    """Call add_frame(make_frame(t)) for t in range(num_ticks); only add_frame is timed.

    Paced ticks are scheduled at start + t / fps; a late tick is not skipped (a robot still
    records that step), so one long stall makes several ticks late.
    """
    trace = LoopTrace()
    period = 1.0 / fps
    clock = time.perf_counter
    start = clock() + (period if paced else 0.0)  # paced tick 0 sleeps like every other tick
    next_sample = start
    for t in range(num_ticks):
        if paced:
            scheduled = start + t * period
            delay = scheduled - clock()
            if delay > 0:
                time.sleep(delay)
            trace.lateness_ms.append((clock() - scheduled) * 1e3)
        frame = make_frame(t)
        t0 = clock()
        add_frame(frame)
        t1 = clock()
        trace.add_frame_ms.append((t1 - t0) * 1e3)
        if sample is not None and t1 >= next_sample:
            trace.samples.append(sample())
            trace.sample_times.append(t1 - start)
            trace.sample_ms.append((clock() - t1) * 1e3)
            next_sample = max(next_sample + 1.0 / sample_hz, t1)
    trace.duration_s = clock() - start
    return trace
