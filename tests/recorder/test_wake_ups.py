"""add_frame wakes the workers with at most one doorbell per frame: the stats worker's, and only
when it sleeps, which it does only after a quiet second (while frames come it polls); the stats
worker relays to the encoders. Every frame still reaches every video."""

from __future__ import annotations

import time

import pytest

from shmpipe import Pipeline
from tests.helpers.frames import smooth_frame
from tests.helpers.media import decode_video, psnr

H, W = 64, 96
CAMS = {"front": (H, W, 3), "wrist": (H, W, 3), "top": (H, W, 3)}


def count_rings(bell) -> list[int]:
    rings = [0]
    ring = bell.ring

    def counted() -> None:
        rings[0] += 1
        ring()

    bell.ring = counted
    return rings


def test_add_frame_rings_only_the_stats_doorbell_and_every_frame_is_encoded(tmp_path, backend):
    n = 45
    with Pipeline(tmp_path, fps=30, cameras=CAMS) as pipe:
        session = pipe._session
        stats_rings = count_rings(session.stats_bell)
        encoder_rings = {name: count_rings(feed.bell) for name, feed in session.feeds.items()}
        for i in range(n):
            pipe.add_frame({name: smooth_frame(i, H, W, k) for k, name in enumerate(CAMS)}, "t")
            time.sleep(0.01)  # the workers catch up and fall asleep between frames
        assert {name: rings[0] for name, rings in encoder_rings.items()} == dict.fromkeys(CAMS, 0)
        # rung at most for the first frame (if the idle worker slept), never while frames come
        assert stats_rings[0] <= 3, f"{stats_rings[0]} doorbells for {n} frames 10 ms apart"
        result = pipe.finish_episode()
    for k, name in enumerate(CAMS):
        frames, times = decode_video(result.videos[name].path)
        assert times == pytest.approx([i / 30 for i in range(n)], abs=1e-4), name
        worst = min(psnr(f, smooth_frame(i, H, W, k)) for i, f in enumerate(frames))
        assert worst >= 30, f"{name}: a frame was lost or mixed up ({worst:.1f} dB)"
