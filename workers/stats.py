"""Stats worker: reads every camera's ring in place and keeps exact per-channel histograms.

Each frame is downsampled as LeRobot does, counted into a 3x256 histogram, committed to the
shared `StatsStore` and only then released, so a restarted worker neither loses nor double-counts
a frame. The control process turns the histograms into min/max/mean/std/quantiles at finish.
"""

from __future__ import annotations

import os

from multiprocess.connection import Connection

from shmpipe import messages
from shmpipe.doorbell import Doorbell
from shmpipe.image_stats import channel_histograms
from shmpipe.ring import STATS_READER, FrameRing
from shmpipe.stats_store import StatsStore
from workers.channel import WorkerChannel, lower_own_priority, main

IDLE_WAIT_S = 0.02


class StatsLoop:
    def __init__(self, channel: WorkerChannel, spec: messages.StatsSpec) -> None:
        self.channel = channel
        self.rings = [FrameRing.attach(name) for name in spec.ring_names]
        self.doorbell = Doorbell.attach(spec.doorbell_name)
        self.store = StatsStore.attach(spec.store_name, len(self.rings))
        self.targets: dict[int, int] = {}  # take -> number of frames, from FinishEpisode
        self.cancelled: set[int] = set()
        for cam, ring in enumerate(self.rings):
            # resume after a restart: frames committed before the crash stay counted once
            ring.release_through(STATS_READER, self.store.tally(cam).next_seq)

    def run(self) -> None:
        self.channel.reply(messages.Ready(pid=os.getpid()))
        try:
            while True:
                for message in self.channel.pending():
                    match message:
                        case messages.Shutdown():
                            return
                        case messages.FinishEpisode(take=take, num_frames=n):
                            self.targets[take] = n
                        case messages.CancelEpisode(take=take):
                            self.cancelled.add(take)
                            self.targets.pop(take, None)
                            self.channel.reply(messages.EpisodeCancelled(take=take))
                self.count_available()
                self.report_complete()
                self.sleep()
        finally:
            for ring in self.rings:
                ring.close()
            self.store.close()
            self.doorbell.close()

    def sleep(self) -> None:
        """Wait for the doorbell unless frames arrived since we last looked."""
        for ring in self.rings:
            ring.set_asleep(STATS_READER, True)
        if all(ring.released(STATS_READER) == ring.write_seq for ring in self.rings):
            self.doorbell.wait(IDLE_WAIT_S)
        for ring in self.rings:
            ring.set_asleep(STATS_READER, False)

    def count_available(self) -> None:
        for cam, ring in enumerate(self.rings):
            while (slot := ring.peek(STATS_READER)) is not None:
                if slot.take not in self.cancelled:
                    self.store.commit(cam, slot.take, slot.seq, channel_histograms(slot.frame))
                seq = slot.seq
                del slot
                ring.release(STATS_READER, seq)

    def report_complete(self) -> None:
        for take, n in list(self.targets.items()):
            tallies = [self.store.tally(cam) for cam in range(len(self.rings))]
            if all(t.take == take and t.frames == n for t in tallies):
                del self.targets[take]
                self.channel.reply(messages.EpisodeDone(take=take, num_frames=n))


def run(conn: Connection, spec: messages.StatsSpec) -> None:
    lower_own_priority()
    StatsLoop(WorkerChannel(conn), spec).run()


if __name__ == "__main__":
    main(run)
