"""What the control process told an encoder of each take, keyed by the take's number (every
frame in the ring is tagged with it, shmpipe.ipc.ring): where its video goes and its rolling
window (StartEpisode), how many frames it has (FinishEpisode), and which takes are void
(cancelled, or failed here): their frames are skipped. It also counts how often a take was
encoded again after a failed encode, so that a codec that keeps failing fails the take.
"""

from __future__ import annotations

from pathlib import Path

from shmpipe import messages
from shmpipe.video.episode_writer import retryable
from shmpipe.video.rolling_segments import RollingSegments

MAX_REENCODES = 3  # per take: the codec's misorder is rare (~1 in 30,000 frames under load)


class TakeOrders:
    """The takes this encoder was told of and has not finished, cancelled or failed."""

    def __init__(self) -> None:
        self.paths: dict[int, str] = {}  # where each take's video goes
        self.rolls: dict[int, RollingSegments] = {}  # rolling takes
        self.targets: dict[int, int] = {}  # the frames of each finished take
        self.newest = 0  # the highest take announced; older unannounced takes are void
        self.void: set[int] = set()  # cancelled or failed takes: their frames are skipped
        self._reencodes: dict[int, int] = {}  # take -> times encoded again after a failure

    def start(self, message: messages.StartEpisode) -> None:
        """A take's StartEpisode (a rolling one is sent again with kept_from by a keep)."""
        take, path = message.take, message.video_path
        self.paths[take] = path
        self.newest = max(self.newest, take)
        if message.roll_frames > 0:
            window = (message.roll_frames, message.segment_frames, message.kept_from)
            self.rolls[take] = RollingSegments(Path(path), *window)

    def finish(self, message: messages.FinishEpisode) -> None:
        self.targets[message.take] = message.num_frames

    def skips(self, take: int) -> bool:
        """Frames of `take` are skipped: it is void, or older than the newest and no longer
        (or never) told of."""
        return take in self.void or (take < self.newest and take not in self.paths)

    def may_encode_again(self, take: int, exc: BaseException) -> bool:
        """After `exc`: whether `take` is encoded again (counted), or fails (the disk refused,
        or it failed MAX_REENCODES times)."""
        tries = self._reencodes.get(take, 0)
        if not retryable(exc) or tries >= MAX_REENCODES:
            return False
        self._reencodes[take] = tries + 1
        return True

    def kept_from(self, take: int) -> int | None:
        """A rolling take's first kept frame, where its video starts; None if it does not roll."""
        roll = self.rolls.get(take)
        return roll.first_kept if roll is not None else None

    def void_take(self, take: int) -> str | None:
        """`take` is void (cancelled, or it failed): forgotten, its frames skipped from now on;
        where its video was to go, if that was told."""
        self.void.add(take)
        path = self.paths.get(take)
        self.forget(take)
        return path

    def forget(self, take: int) -> None:
        self.paths.pop(take, None)
        self.rolls.pop(take, None)
        self.targets.pop(take, None)
        self._reencodes.pop(take, None)
