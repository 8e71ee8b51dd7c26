"""Sources for recording tests: a real file source whose frames report capture times a test
chose (so stored capture times can be compared exactly), and a small clip to play."""

from __future__ import annotations

from collections.abc import Callable

import av
import numpy as np

from shmpipe.tools.sources import Capture, open_source
from tests.helpers.frames import smooth_frame


def write_clip(path, count: int, height: int, width: int) -> str:
    """`count` smooth moving frames as lossless-ish H.264 at 30 fps; returns the path."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=30, options={"crf": "10"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for k in range(count):
            picture = av.VideoFrame.from_ndarray(smooth_frame(k, height, width), format="rgb24")
            out.mux(video.encode(picture))
        out.mux(video.encode())
    return str(path)


class KnownTimesFileSource:
    """`file:<clip>` as `shmpipe record` opens it, but read k reports Capture(time(k),
    sequence(k)): the times a test later expects in the dataset."""

    def __init__(self, clip: str, fps: int, time: Callable[[int], float],
                 sequence: Callable[[int], int] = lambda k: k) -> None:  # fmt: skip
        self._inner = open_source(f"file:{clip}", fps)
        self.shape, self.reads = self._inner.shape, 0
        self._time, self._sequence = time, sequence

    def read_into(self, out: np.ndarray) -> Capture:
        self._inner.read_into(out)
        k, self.reads = self.reads, self.reads + 1
        return Capture(self._time(k), self._sequence(k))

    def close(self) -> None:
        self._inner.close()
