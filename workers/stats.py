"""Stats worker: reads every camera's ring in place and keeps exact per-channel histograms.

Each frame is downsampled as LeRobot does, counted into a histogram (3x256 RGB, 1x4096 depth),
committed to the shared `StatsStore` and only then released, so a restarted worker neither loses
nor double-counts a frame. The control process turns the histograms into
min/max/mean/std/quantiles at finish.
"""

from __future__ import annotations

from multiprocess.connection import Connection

from shmpipe.ipc import messages
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.histogram_store import StatsStore
from shmpipe.ipc.ring import STATS_READER, RingReader
from shmpipe.stats.images import frame_histogram, histogram_shape
from workers.base import WorkerLoop, main


class StatsLoop(WorkerLoop):
    def __init__(self, conn: Connection, spec: messages.StatsSpec) -> None:
        rings = [RingReader.attach(name, STATS_READER) for name in spec.ring_names]
        super().__init__(conn, Doorbell.attach(spec.doorbell_name), rings)
        shapes = [histogram_shape(ring.shape) for ring in rings]
        self.store = StatsStore.attach(spec.store_name, len(rings), shapes)
        self.targets: dict[int, int] = {}  # take -> number of frames, from FinishEpisode
        self.cancelled: set[int] = set()
        for cam, ring in enumerate(rings):
            # resume after a restart: frames committed before the crash stay counted once
            ring.release_through(self.store.tally(cam).next_seq)

    def has_unread(self) -> bool:
        return any(ring.unread(ring.released(STATS_READER)) for ring in self.readers)

    def handle(self, message: messages.ToWorker) -> None:
        match message:
            case messages.FinishEpisode(take=take, num_frames=n):
                self.targets[take] = n
            case messages.CancelEpisode(take=take):
                self.cancelled.add(take)
                self.targets.pop(take, None)
                self.reply(messages.EpisodeCancelled(take=take))

    def work(self) -> None:
        for cam, ring in enumerate(self.readers):
            seq = ring.released(STATS_READER)
            while ring.unread(seq):
                slot = ring.read(seq)
                if slot.take not in self.cancelled:
                    self.store.commit(cam, slot.take, seq, frame_histogram(slot.frame))
                del slot
                seq += 1
                ring.release_through(seq)
                ring.beat()
        for take, n in list(self.targets.items()):
            tallies = [self.store.tally(cam) for cam in range(len(self.readers))]
            if all(t.take == take and t.frames == n for t in tallies):
                del self.targets[take]
                self.reply(messages.EpisodeDone(take=take, num_frames=n))

    def close(self, crashed: bool) -> None:
        self.store.close()
        super().close(crashed)


if __name__ == "__main__":
    main(StatsLoop)
