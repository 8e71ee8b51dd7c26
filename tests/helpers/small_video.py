"""Small SVT-AV1 videos of flat frames, for tests that encode without a Pipeline: the settings,
the frames, and the check that a video holds frames 0..n-1 once each, in order, at i / fps."""

from __future__ import annotations

import numpy as np

from shmpipe.video import codecs
from shmpipe.video.settings import VideoSettings
from tests.helpers.frames import value_of
from tests.helpers.media import decode_video

FPS = 30
SIZE = 64
# shmpipe's settings for SVT-AV1 (LeRobot's crf 30, a keyframe every 2 frames), one thread;
# priority 0 and scope "thread" leave the threads of the process that encodes as they are
OPTIONS = codecs.codec_options("libsvtav1", 30, 2, None, 0, {}, 1)
SMALL_AV1 = VideoSettings(FPS, SIZE, SIZE, "libsvtav1", "yuv420p", OPTIONS, 0, "thread")


def flat(value: int) -> np.ndarray:
    return np.full((SIZE, SIZE, 3), value, np.uint8)


def assert_flat_frames(path, n: int) -> None:
    """`path` holds flat(value_of(i)) for i < n, each once, in order, at i / FPS."""
    decoded, times = decode_video(path)
    values = [round(float(f.mean())) for f in decoded]
    assert len(values) == n, f"{len(values)} frames in the video, expected {n}"
    np.testing.assert_allclose(times, np.arange(n) / FPS, atol=1e-4)
    wrong = [i for i, v in enumerate(values) if abs(v - value_of(i)) > 6]
    assert not wrong, f"frames {wrong} hold another frame (got {[values[i] for i in wrong]})"
