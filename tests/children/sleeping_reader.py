"""A ring's encoder reader that sleeps as every worker does (WorkerLoop.sleep), with a backstop
timeout so long that only a doorbell can end a sleep during a test: each wait that times out
instead is a lost wake-up. Reads `frames` frames, checks each, then prints
{"frames": read, "woken": waits a ring ended, "timed_out": waits that ran out}.

    python sleeping_reader.py RING BELL FRAMES
"""

import json
import sys

import workers.base
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.ring import ENCODER_READER, RingReader
from workers.base import WorkerLoop

workers.base.IDLE_WAIT_S = 60.0


class CountingBell(Doorbell):
    woken = timed_out = 0

    def wait(self, timeout: float) -> bool:
        rung = super().wait(timeout)
        if rung:
            self.woken += 1
        else:
            self.timed_out += 1
        return rung


class Reader(WorkerLoop):
    def __init__(self, ring: RingReader, bell: CountingBell) -> None:
        super().__init__(None, bell, [ring])
        self.ring, self.seq = ring, 0

    def has_unread(self) -> bool:
        return self.ring.unread(self.seq)

    def work(self) -> None:
        while self.ring.unread(self.seq):
            slot = self.ring.read(self.seq)
            if (slot.frame_index, int(slot.frame[0, 0, 0])) != (self.seq, self.seq % 251):
                sys.exit(f"frame {self.seq}: wrong header or contents")
            del slot
            self.seq += 1
            self.ring.release_through(self.seq)


def main() -> None:
    ring_name, bell_name, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ring = RingReader.attach(ring_name, ENCODER_READER)
    loop = Reader(ring, CountingBell(bell_name, create=False))
    print("ready", flush=True)
    loop.work()
    while loop.seq < frames:
        loop.sleep()
        loop.work()
    bell = loop.doorbell
    counts = {"frames": loop.seq, "woken": bell.woken, "timed_out": bell.timed_out}
    ring.close()
    loop.doorbell.close()
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
