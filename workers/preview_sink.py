"""Where preview pictures go: a Rerun recording stream (a spawned viewer, a remote one, or a
file). Only the preview worker imports rerun, and only here, so a viewer that is slow or gone
can at worst make the preview lag; the recording never calls into it.
Works with rerun-sdk 0.23 and later (rr.Scalars and RecordingStream.set_time arrived in 0.23).
"""

from __future__ import annotations

import numpy as np

from shmpipe import messages
from shmpipe.ipc.ring import Slot


class RerunSink:
    """One recording stream; images and series are stamped on three timelines: `frame` (frames
    added since start(), the same for every camera and the rows), `take` and `frame_index`."""

    def __init__(self, spec: messages.PreviewSpec) -> None:
        import rerun as rr  # the optional extra: Pipeline.start() checked it is installed

        self._rr = rr
        self._jpeg = spec.jpeg_quality
        self.stream = rr.RecordingStream(spec.application_id)
        if spec.mode == "save":
            self.stream.save(spec.path)
        elif spec.mode == "connect":
            self.stream.connect_grpc(spec.url)
        else:
            self.stream.spawn(memory_limit=spec.memory_limit)

    def _at(self, seq: int, take: int, frame_index: int) -> None:
        self.stream.set_time("frame", sequence=seq)
        self.stream.set_time("take", sequence=take)
        self.stream.set_time("frame_index", sequence=frame_index)

    def image(self, camera: str, slot: Slot) -> None:
        """`slot.frame` is a downsampled copy: (h, w, 3) uint8 RGB or (h, w, 1) uint16 mm."""
        self._at(slot.seq, slot.take, slot.frame_index)
        if slot.frame.dtype == np.uint16:
            picture = self._rr.DepthImage(slot.frame[..., 0], meter=1000.0)
        else:
            picture = self._rr.Image(slot.frame)
            if self._jpeg:
                picture = picture.compress(jpeg_quality=self._jpeg)
        self.stream.log(camera, picture)

    def series(self, feature: str, seq: int, take: int, frame_index: int,
               values: np.ndarray) -> None:  # fmt: skip
        self._at(seq, take, frame_index)
        self.stream.log(feature, self._rr.Scalars(values))

    def close(self) -> None:
        """Send what is buffered (a file gets its end), within a bound: a viewer that does not
        read must not keep the worker from exiting."""
        self.stream.flush(timeout_sec=0.5)
        self.stream.disconnect()
