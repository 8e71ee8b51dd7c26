"""Wake-ups: a reader sets its sleep flag, looks for frames, then sleeps on its doorbell; the
stats worker, woken once per frame by add_frame, rings every encoder that sleeps with frames to
read. The reader here is a real process sleeping as every worker does (WorkerLoop.sleep), with
a 60 s backstop: any wait that ends by timing out is a lost wake-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from shmpipe import messages
from shmpipe.ipc import names
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.histogram_store import StatsStore
from shmpipe.ipc.ring import ENCODER_READER, STATS_READER, RingReader, RingWriter
from tests.helpers.paths import CHILDREN, REPO
from tests.helpers.processes import stop_process
from workers.stats import StatsLoop

SHAPE = (8, 8, 3)


class Relay:
    """A ring, the encoder's doorbell and a stats worker loop run in this process, which
    relays wake-ups to the encoder reader exactly as the stats worker process does."""

    def __init__(self, capacity: int) -> None:
        owner = messages.Owner(os.getpid(), names.new_token())
        # held while the objects live, so no other process's start() sweeps them as orphans
        self.lock = names.OwnerLock(owner.pid, owner.token)
        name = lambda what: names.object_name(owner.pid, owner.token, what)  # noqa: E731
        self.ring = RingWriter.create(name("ring0"), capacity, SHAPE)
        self.bell = Doorbell.create(name("bell0"))
        self.stats_bell = Doorbell.create(name("bellstats"))
        self.store = StatsStore.create(name("stats"), 1)
        spec = messages.StatsSpec(["front"], [self.ring.name], self.stats_bell.name,
                                  self.store.name, owner, 0, [self.bell.name])  # fmt: skip
        self.stats = StatsLoop(None, spec)
        self.published = 0

    def publish(self) -> bool:
        """Frame `published` (every byte seq % 251), if a slot is free; then the stats
        worker's turn (relay, then its own reading)."""
        slot = self.ring.claim()
        if slot is not None:
            slot[...] = self.published % 251
            self.ring.publish(1, self.published)
            self.published += 1
        self.stats.work()
        return slot is not None

    def close(self) -> None:
        self.stats.close(crashed=False)
        for thing in (self.store, self.stats_bell, self.bell, self.ring):
            thing.close()
            thing.unlink()
        self.lock.release()


@pytest.fixture
def relay():
    rig = Relay(capacity=4)
    yield rig
    rig.close()


def start_reader(relay: Relay, frames: int) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, str(CHILDREN / "sleeping_reader.py"), relay.ring.name, relay.bell.name,
         str(frames)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert child.stdout.readline().strip() == "ready", child.stderr.read()[-2000:]
    return child


def counts_of(child: subprocess.Popen) -> dict:
    try:
        out, err = child.communicate(timeout=120)
    finally:
        stop_process(child)
    assert child.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def wait_until_asleep(ring: RingWriter, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ring.sleeping(ENCODER_READER):
        assert time.monotonic() < deadline, "the reader never went to sleep"
        time.sleep(0.01)


def test_a_sleeping_reader_is_woken_by_a_publish_relayed_by_the_stats_worker(relay):
    child = start_reader(relay, frames=1)
    wait_until_asleep(relay.ring)
    assert relay.publish()
    assert counts_of(child) == {"frames": 1, "woken": 1, "timed_out": 0}
    assert not relay.ring.sleeping(ENCODER_READER)


def test_no_wake_up_is_lost_under_many_publishes(relay):
    """3,000 frames through a 4-slot ring, in bursts with pauses, so the reader keeps falling
    asleep while frames arrive; a lost wake-up would be a 60 s wait that times out (or a
    writer that never finds a free slot)."""
    frames = 3000
    child = start_reader(relay, frames)
    rng = np.random.default_rng(0)
    deadline = time.monotonic() + 120
    while relay.published < frames:
        assert time.monotonic() < deadline, f"stuck at frame {relay.published}: lost wake-up"
        if not relay.publish():
            time.sleep(0)  # full: the reader has not released yet
        elif rng.random() < 0.05:
            time.sleep(rng.random() * 0.002)  # a pause: the reader falls asleep
    counts = counts_of(child)
    assert counts["frames"] == frames
    assert counts["timed_out"] == 0, f"{counts['timed_out']} wake-ups were lost"
    assert counts["woken"] > 10, "the reader never slept: the test exercised nothing"


def test_the_relay_rings_only_an_encoder_that_sleeps_with_frames_to_read(relay):
    encoder = RingReader.attach(relay.ring.name, ENCODER_READER)
    try:
        encoder.set_asleep(True)
        relay.stats.work()  # asleep, nothing to read: not rung
        assert not relay.bell.wait(0)
        encoder.set_asleep(False)
        relay.publish()  # awake: it will see the frame itself
        assert not relay.bell.wait(0)
        encoder.set_asleep(True)
        relay.publish()
        assert relay.bell.wait(0), "a sleeping encoder with frames to read was not rung"
        relay.publish()
        assert not relay.bell.wait(0), "rung twice for one sleep"
        assert relay.ring.released(STATS_READER) == relay.published  # the stats work went on
    finally:
        encoder.close()
