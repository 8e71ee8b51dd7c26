"""Input and encode rates of one camera over the last few seconds, for status()."""

from __future__ import annotations

import time
from collections import deque


class RateMeter:
    """Frames per second of two counters over the last few seconds, for status()."""

    def __init__(self, window_s: float = 3.0) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int, int]] = deque()

    def restart(self, written: int, encoded: int) -> None:
        """Begin measuring from these counts now (an episode opens), so the first status() call
        already has a window to measure over."""
        self.samples.clear()
        self.samples.append((time.monotonic(), written, encoded))

    def rates(self, written: int, encoded: int) -> tuple[float, float]:
        now = time.monotonic()
        self.samples.append((now, written, encoded))
        while len(self.samples) > 2 and now - self.samples[1][0] > self.window_s:
            self.samples.popleft()
        t0, w0, e0 = self.samples[0]
        span = now - t0
        if span < 0.2:
            return 0.0, 0.0
        return (written - w0) / span, (encoded - e0) / span
