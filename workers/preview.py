"""Preview worker: shows the newest frame of every camera, and the numeric row, in a viewer.

It peeks at the rings (shmpipe.ipc.ring.RingPeeker): no slot is held and no counter of the ring
is written, so the writer never waits for it and the encoders never see it. A few times a second
it copies a strided, downsampled version of each camera's newest frame (a copy the writer may
have refilled meanwhile is dropped) and the newest row (shmpipe.ipc.latest_row), and logs them
(workers.preview_sink). Frames in between are skipped; a slow viewer only makes it lag.
"""

from __future__ import annotations

import time

import numpy as np
from multiprocess.connection import Connection

from shmpipe import messages
from shmpipe.ipc.latest_row import LatestRow
from shmpipe.ipc.ring import RingPeeker

from .base import IDLE_WAIT_S, WorkerLoop, main
from .preview_sink import RerunSink


def downsample(frame: np.ndarray, max_height: int) -> np.ndarray:
    """Every k-th pixel in both directions, the smallest k that brings the height to
    `max_height` or less; a contiguous copy (no filtering: it is for the eye)."""
    step = -(-frame.shape[0] // max_height)
    return np.ascontiguousarray(frame[::step, ::step])


class PreviewLoop(WorkerLoop):
    """Answers nothing about episodes: the supervisor never waits for it."""

    def __init__(self, conn: Connection, spec: messages.PreviewSpec) -> None:
        self.peekers = [RingPeeker.attach(name) for name in spec.ring_names]
        super().__init__(conn, None, [])
        self.cameras = spec.cameras
        features = {name: tuple(shape) for name, shape in spec.features.items()}
        self.row = LatestRow.attach(spec.row_name, features) if spec.row_name else None
        self.sink = RerunSink(spec)
        self.period, self.max_height = 1.0 / spec.fps, spec.max_height
        self.next_at = time.monotonic()
        self.seen = [0] * len(self.peekers)  # per camera: frames before this one were shown
        self.rows_seen = 0

    def handle(self, message: messages.ToWorker) -> None:
        pass  # episodes do not concern it: it shows whatever is newest

    def has_unread(self) -> bool:
        return False

    def work(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = max(self.next_at + self.period, now)
        for cam, peeker in enumerate(self.peekers):
            slot = peeker.copy_newest(self.seen[cam], self._shrink)
            if slot is not None:
                self.seen[cam] = slot.seq + 1
                self.sink.image(self.cameras[cam], slot)
        newest = self.row.read(self.rows_seen) if self.row is not None else None
        if newest is not None:
            self.rows_seen, take, frame_index, values = newest
            for name, where in self.row.slices.items():
                self.sink.series(name, self.rows_seen - 1, take, frame_index, values[where])

    def _shrink(self, frame: np.ndarray) -> np.ndarray:
        return downsample(frame, self.max_height)

    def sleep(self) -> None:
        """Until the next picture is due, or a control message comes (Shutdown)."""
        wait = min(max(self.next_at - time.monotonic(), 0.0), 10 * IDLE_WAIT_S)
        if wait > 0 and not self.messages_waiting():
            try:
                self._conn.poll(wait)
            except (EOFError, OSError):
                pass  # the next pending() says the owner is gone

    def close(self, crashed: bool) -> None:
        self.sink.close()
        for peeker in self.peekers:
            peeker.close()
        if self.row is not None:
            self.row.close()


if __name__ == "__main__":
    main(PreviewLoop)
