"""lerobot-rollout's `highlight` strategy through rolling capture instead of LeRobot's RAM ring.

LeRobot 0.6's HighlightStrategy.setup() makes `RolloutRingBuffer(max_seconds=
ring_buffer_seconds, max_memory_mb=..., fps=...)`, a name it looks up in the globals of
`lerobot.rollout.strategies.highlight` (swap.py puts `rolling_ring` there, bound to the
recorders the drop-in made). Its loop then calls only `ring.append(frame)` while not recording,
`len(ring)` and `ring.drain()` on the save key (every drained frame goes to
`dataset.add_frame` in that one tick), and nothing else (`clear` is never called in 0.6.1).

Here the ring is the recorder's own Pipeline rolling (shmpipe.recorder.rolling): append is
add_frame into the encoded window of the last `ring_buffer_seconds`, drain is `keep()` and
returns no frame to replay, so the save key's tick costs one message per encoder; save_episode
commits the kept pre-roll and the live frames, and the next take rolls again. No memory cap
applies and nothing is evicted: the window is its encoded size, on disk.

Why the Pipeline is made again in setup() rather than rolling from create(): the dataset is
made in `build_rollout_context` from keywords that do not say which strategy will run, and a
Pipeline's rolling plan is fixed when its workers start (the stats worker sizes its snapshots
by it). setup() is where LeRobot itself reads `ring_buffer_seconds`, before the loop and before
any frame, on every way of running the strategy (the command, install(), a script of one's own),
so `roll()` closes the recorder's idle Pipeline there and starts it again with preroll_s: a
worker restart outside the control loop, nothing on disk lost (no episode was started).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from shmpipe.errors import UsageError
from shmpipe.integrations.lerobot.recorder import LeRobotRecorder

__all__ = ["RollingRing", "roll", "rolling_ring"]
log = logging.getLogger("shmpipe.integrations.lerobot")


def roll(recorder: LeRobotRecorder, preroll_s: float) -> None:
    """Make `recorder` capture rolling with a window of `preroll_s` from now on; only before it
    recorded anything (UsageError), as its Pipeline is made and started again."""
    pipeline = recorder.pipeline
    if pipeline.preroll_s == preroll_s:
        return
    if pipeline.episode_frames or recorder.saved:
        raise UsageError(f"{recorder.repo_id}: rolling capture ({preroll_s} s) must be chosen "
                         "before the first frame")  # fmt: skip
    remade = recorder.make_pipeline(preroll_s=preroll_s)  # ConfigError before anything closes
    pipeline.close()
    recorder.pipeline = remade.start()


class RollingRing:
    """What HighlightStrategy asks of its RolloutRingBuffer, answered by the recorder rolling."""

    def __init__(self, recorder: LeRobotRecorder, max_seconds: float) -> None:
        roll(recorder, max_seconds)
        self.recorder = recorder

    def append(self, frame: dict) -> None:
        """Into the window (encoded now; what falls out of it is deleted)."""
        self.recorder.add_frame(frame)

    def drain(self) -> list[dict]:
        """Keep the window as the open episode; nothing to replay (empty list)."""
        kept = self.recorder.pipeline.keep()
        log.info("shmpipe: highlight keeps the pre-roll: %d frames, encoded already (nothing "
                 "replayed)", kept)  # fmt: skip
        return []

    def clear(self) -> None:
        """Discard the window (or the kept episode) and roll again."""
        self.recorder.pipeline.cancel_episode()

    def __len__(self) -> int:
        """Frames in the window while rolling (what drain would keep); 0 once kept."""
        pipeline = self.recorder.pipeline
        return pipeline.episode_frames if pipeline.rolling else 0


def rolling_ring(made: Sequence[LeRobotRecorder], real: type, max_seconds: float = 30.0,
                 max_memory_mb: int = 2048, fps: float = 30.0) -> RollingRing | object:  # fmt: skip
    """RolloutRingBuffer's signature (swap.py binds `made` and LeRobot's class `real`): a
    RollingRing over the last recorder the drop-in made, or LeRobot's own ring if there is
    none (a rollout without a dataset through shmpipe)."""
    if not made or made[-1].finalized:
        return real(max_seconds=max_seconds, max_memory_mb=max_memory_mb, fps=fps)
    log.info("shmpipe: highlight's ring is rolling capture: the last %s s stay encoded "
             "(ring_buffer_max_memory_mb=%s does not apply: nothing is evicted)",
             max_seconds, max_memory_mb)  # fmt: skip
    return RollingRing(made[-1], max_seconds)
