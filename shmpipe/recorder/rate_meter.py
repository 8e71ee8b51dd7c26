"""Input and encode rates of one camera over the last few seconds, and the projected wait at
finish, for status().

An encoder always holds a frame or a few (the one it is encoding, codec start-up at an episode's
first frame, a busy machine): counted as a deficit over a short window, they made a keeping-up
encoder read 7-25 fps just after an episode opened. So an encoder whose unencoded frames all
arrived within KEEPING_UP_S is keeping up: it encodes what it is given, at the input rate.
"""

from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple

KEEPING_UP_S = 0.25  # unencoded frames of at most this long ago: the encoder is not behind


class Rates(NamedTuple):
    input_fps: float  # frames added per second
    encode_fps: float  # frames encoded per second (the input rate while keeping up)
    finish_wait_s: float  # projected: unencoded frames / encode_fps (inf if nothing is encoded)


class RateMeter:
    """Frames per second of two counters (added, encoded) over the last few seconds."""

    def __init__(self, window_s: float = 3.0) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int, int]] = deque()

    def restart(self, written: int, encoded: int) -> None:
        """An episode's first frame is about to be added: measure from now, so the first
        status() call already has a window. That frame counts as arrived now, so the rate is the
        frames after it over the time since it (a paced 30 fps input reads 30, not more)."""
        self.samples.clear()
        self.samples.append((time.monotonic(), written + 1, encoded))

    def rates(self, written: int, encoded: int) -> Rates:
        now = time.monotonic()
        self.samples.append((now, written, encoded))
        while len(self.samples) > 2 and now - self.samples[1][0] > self.window_s:
            self.samples.popleft()
        t0, w0, e0 = self.samples[0]
        span = now - t0
        input_fps = max(0, written - w0) / span if span > 0 else 0.0
        behind = written - encoded
        if behind <= max(1.0, input_fps * KEEPING_UP_S):  # keeping up
            wait = behind / input_fps if input_fps > 0 else 0.0
            return Rates(input_fps, input_fps, wait)
        encode_fps = max(0, encoded - e0) / span if span > 0 else 0.0
        return Rates(input_fps, encode_fps, behind / encode_fps if encode_fps > 0 else float("inf"))
