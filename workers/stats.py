"""Stats worker: reads every camera's ring in place and keeps exact per-channel histograms.

Each frame is downsampled as LeRobot does, counted into a histogram (3x256 RGB, 1x4096 depth),
committed to the shared `StatsStore` and only then released, so a restarted worker neither loses
nor double-counts a frame. The control process turns the histograms into
min/max/mean/std/quantiles at finish.

The stats worker is also the frames' doorbell relay: it rings each encoder that sleeps with
frames to read, so the control loop rings no encoder. While frames keep coming it does not ask
to be woken either: it looks every POLL_S (a futex wake-up costs add_frame ~40 us on a cold
cache, up to 1 ms at its p99; 200 looks a second cost this worker well under 1 % of a core).
After QUIET_S without a frame it sleeps on its doorbell, which the next add_frame rings.
Should it be dead or stopped, encoders still wake at their timeout.
"""

from __future__ import annotations

import time

from multiprocess.connection import Connection

from shmpipe import messages
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.histogram_store import StatsStore
from shmpipe.ipc.ring import ENCODER_READER, STATS_READER, RingReader
from shmpipe.stats.images import frame_histogram, histogram_shape

from .base import WorkerLoop, main

POLL_S = 0.005  # while frames come: a frame reaches a sleeping encoder within this
QUIET_S = 1.0  # then without frames for this long: sleep until add_frame rings


class StatsLoop(WorkerLoop):
    def __init__(self, conn: Connection, spec: messages.StatsSpec) -> None:
        rings = [RingReader.attach(name, STATS_READER) for name in spec.ring_names]
        super().__init__(conn, Doorbell.attach(spec.doorbell_name), rings)
        shapes = [histogram_shape(ring.shape) for ring in rings]
        self.store = StatsStore.attach(spec.store_name, len(rings), shapes, spec.snapshots)
        self.every = spec.segment_frames if spec.snapshots else 0
        self.encoder_bells: list[Doorbell] = []
        for name in spec.encoder_doorbells:
            self.encoder_bells.append(Doorbell.attach(name))
        self.targets: dict[int, int] = {}  # take -> number of frames, from FinishEpisode
        self.cancelled: set[int] = set()
        self.counting: list[int] = []  # per camera: the take its tally counts
        self.blocked: set[int] = set()  # cameras held at a later take's first frame
        self.last_frame_at = float("-inf")  # monotonic time this worker last read a frame
        for cam, ring in enumerate(rings):
            # resume after a restart: frames committed before the crash stay counted once
            tally = self.store.tally(cam)
            ring.release_through(tally.next_seq)
            self.counting.append(tally.take)

    def has_unread(self) -> bool:
        return any(ring.unread(ring.released(STATS_READER))
                   for cam, ring in enumerate(self.readers) if cam not in self.blocked)  # fmt: skip

    def handle(self, message: messages.ToWorker) -> None:
        match message:
            case messages.FinishEpisode(take=take, num_frames=n):
                if all(counted <= take for counted in self.counting):
                    self.targets[take] = n  # (else answered before a restart: a camera moved on)
            case messages.CancelEpisode(take=take):
                self.cancelled.add(take)
                self.targets.pop(take, None)
                self.blocked.clear()
                self.reply(messages.EpisodeCancelled(take=take))

    def sleep(self) -> None:
        """Poll while frames come (add_frame then rings nobody), else sleep on the doorbell."""
        if time.monotonic() - self.last_frame_at < QUIET_S:
            if not self.has_unread():
                self.doorbell.wait(POLL_S)
        else:
            super().sleep()

    def relay_wake_ups(self) -> None:
        """Ring the doorbell of every encoder that sleeps while its ring has frames it has not
        read (it set its flag before its last look, so it cannot miss this)."""
        for ring, bell in zip(self.readers, self.encoder_bells, strict=False):
            if ring.unread(ring.progress(ENCODER_READER)) and ring.wake_needed(ENCODER_READER):
                bell.ring()

    def work(self) -> None:
        self.relay_wake_ups()  # first: the encoders' work is the longer
        for cam, ring in enumerate(self.readers):
            if cam not in self.blocked:
                self.count(cam, ring)
        self.answer_finished()

    def count(self, cam: int, ring: RingReader) -> None:
        """Count the camera's unread frames, up to the first of a take its tally must not
        move to yet."""
        seq = ring.released(STATS_READER)
        while ring.unread(seq):
            slot = ring.read(seq)
            take = slot.take
            if take not in self.cancelled:
                if take != self.counting[cam] and not self.may_move_on(cam):
                    del slot
                    return
                histogram = frame_histogram(slot.frame)
                if self.every and (slot.frame_index + 1) % self.every == 0:
                    self._snapshot(cam, take, slot.frame_index + 1, histogram)
                self.store.commit(cam, take, seq, histogram)
                self.counting[cam] = take
            del slot
            seq += 1
            ring.release_through(seq)
            ring.beat()
            self.last_frame_at = time.monotonic()

    def may_move_on(self, cam: int) -> bool:
        """Whether the camera's tally may leave its take for a later one: not while a finish
        of that take awaits its histograms (the tally would be overwritten: the camera waits
        until every camera has the take whole, then the reply carries them). The control
        process sends a take's FinishEpisode or CancelEpisode before any later frame, so a
        take without either, and no message waiting, was settled before this worker began."""
        if self.counting[cam] < 0:
            return True  # the tally holds no take yet
        self.answer_finished()
        if self.counting[cam] in self.targets:
            self.blocked.add(cam)
            return False
        return not self.messages_waiting()  # (if one waits: read it first, then count)

    def answer_finished(self) -> None:
        """Reply EpisodeDone, with the histograms, for each finished take every camera holds
        whole."""
        for take, n in list(self.targets.items()):
            tallies = [self.store.tally(cam) for cam in range(len(self.readers))]
            if all(t.take == take and t.frames == n for t in tallies):
                del self.targets[take]
                self.blocked.clear()
                histograms = [t.histogram.tobytes() for t in tallies]
                self.reply(messages.EpisodeDone(take=take, num_frames=n, histograms=histograms))

    def _snapshot(self, cam: int, take: int, frames: int, histogram) -> None:
        """Rolling capture: the take's cumulative histogram once this frame is counted."""
        tally = self.store.tally(cam)
        if tally.take == take:
            histogram = tally.histogram + histogram.reshape(tally.histogram.shape)
        self.store.write_snapshot(cam, take, frames, histogram, self.every)

    def close(self, crashed: bool) -> None:
        for bell in self.encoder_bells:
            bell.close()
        self.store.close()
        super().close(crashed)


if __name__ == "__main__":
    main(StatsLoop)
