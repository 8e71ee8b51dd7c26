"""What each camera did during one take, from counters that run for the whole session.

A camera's feed counts frames added, backlogged and spilled since start(); a take notes them
when it opens, so its own counts are the differences from then (a discarded take's frames are
not the next one's). It also holds the take's rate meters that status() reads, and warns once
per camera when the camera's frames start to wait in the backlog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from shmpipe.recorder.camera_feed import CameraFeed
from shmpipe.recorder.rate_meter import RateMeter, Rates

log = logging.getLogger("shmpipe")


class CameraCounts:
    """Each camera's counters when its take opened (`feeds`); none before: every count is 0."""

    def __init__(self, feeds: Iterable[CameraFeed] = ()) -> None:
        self._at_open: dict[str, tuple[int, int, int]] = {}  # (added, backlogged, spilled)
        self._meters: dict[str, RateMeter] = {}
        self._warned: set[str] = set()  # cameras whose backlog was reported
        for feed in feeds:
            added = feed.added()
            self._at_open[feed.name] = (added, feed.backlogged, feed.spilled)
            self._meters[feed.name] = meter = RateMeter()
            meter.restart(added, feed.encoded())

    def frames(self, feeds: Iterable[CameraFeed]) -> dict[str, int]:
        """Frames each camera got since the take opened (in its ring, or waiting for it)."""
        at_open = self._at_open
        return {f.name: f.added() - at_open[f.name][0] for f in feeds if at_open}

    def overflowed(self, feed: CameraFeed) -> int:
        """Frames of the take that went through the camera's backlog."""
        return feed.backlogged - self._at_open[feed.name][1] if self._at_open else 0

    def spilled(self, feed: CameraFeed) -> int:
        """Of those, frames that went through the disk spill file."""
        return feed.spilled - self._at_open[feed.name][2] if self._at_open else 0

    def rates(self, feed: CameraFeed, encoded: int) -> Rates:
        """The camera's frames per second added and encoded while the take is open."""
        return self._meters.get(feed.name, RateMeter()).rates(feed.added(), encoded)

    def warn_if_behind(self, feeds: list[CameraFeed]) -> None:
        """One warning per camera and take, when its frames start to wait in the backlog."""
        for feed in feeds:
            if feed.backlog and feed.name not in self._warned:
                self._warned.add(feed.name)
                log.warning("camera %r: the encoder is %d frames behind (its ring is full); "
                            "frames wait in the backlog and finish_episode() will wait for "
                            "them; see status()", feed.name, feed.ring.capacity)  # fmt: skip
