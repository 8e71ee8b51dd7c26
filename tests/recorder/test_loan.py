"""Zero-copy capture: a driver fills a loaned ring slot in place and add_frame publishes it."""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe import FrameError, Pipeline, VideoEncoderConfig
from tests.helpers.frames import smooth_frame, textured_frame
from tests.helpers.media import decode_video, psnr

H, W = 96, 128
CAMS = {"front": (H, W, 3), "wrist": (H, W, 3)}
LOW_DELAY = VideoEncoderConfig(vcodec="libx264", preset=None, extra_options={"tune": "zerolatency"})


def test_loaned_slots_are_recorded_without_a_copy(tmp_path, backend):
    n = 40
    with Pipeline(tmp_path, fps=30, cameras=CAMS) as pipe:
        for i in range(n):
            front = pipe.loan("front")
            assert front.shape == (H, W, 3) and front.dtype == np.uint8 and front.flags.writeable
            front[...] = smooth_frame(i, H, W)  # as a driver writes into the buffer it is given
            pipe.add_frame({"front": front, "wrist": smooth_frame(i, H, W, 1.0)}, task="t")
        result = pipe.finish_episode()
    for name, phase in (("front", 0.0), ("wrist", 1.0)):
        frames, times = decode_video(result.videos[name].path)
        assert len(frames) == n
        assert times == pytest.approx([i / 30 for i in range(n)], abs=1e-4)
        worst = min(psnr(f, smooth_frame(i, H, W, phase)) for i, f in enumerate(frames))
        assert worst >= 35, f"{name}: a loaned frame was not recorded as written ({worst:.1f} dB)"


def test_a_loan_that_is_not_added_is_returned_and_records_nothing(tmp_path):
    with Pipeline(tmp_path, fps=30, cameras=CAMS, backend="thread") as pipe:
        for i in range(10):
            unused = pipe.loan("front")
            unused[...] = 255  # never added: must not appear anywhere
            frame = {name: np.full((H, W, 3), 20 + 10 * i, np.uint8) for name in CAMS}
            pipe.add_frame(frame, task="t")
        pipe.loan("wrist")[...] = 255
        pipe.cancel_episode()  # returns the open loan
        pipe.add_frame({name: np.full((H, W, 3), 7, np.uint8) for name in CAMS}, task="t")
        result = pipe.finish_episode()
    frames, _ = decode_video(result.videos["front"].path)
    assert len(frames) == 1 and abs(float(frames[0].mean()) - 7) < 2


def test_loans_go_through_the_backlog_when_the_ring_is_full(tmp_path, backend):
    n = 120
    images = [textured_frame(i, H, W) for i in range(n)]
    with Pipeline(tmp_path, fps=30, cameras={"front": (H, W, 3)}, encoder=LOW_DELAY,
                  ring_budget_bytes=1) as pipe:  # fmt: skip
        for image in images:  # unpaced: faster than the encoder
            buffer = pipe.loan("front")
            np.copyto(buffer, image)
            pipe.add_frame({"front": buffer}, task="t")
        result = pipe.finish_episode()
    assert result.overflow_count["front"] > 0, "the ring never filled; the test proves nothing"
    frames, _ = decode_video(result.videos["front"].path)
    assert len(frames) == n
    # x264 at crf 30 on random pixels: far from lossless, but each frame must be its own
    for i in (0, n // 2, n - 1):
        scores = [psnr(frames[i], images[j]) for j in (i - 1, i, i + 1) if 0 <= j < n]
        assert max(scores) == psnr(frames[i], images[i]), f"frame {i} is out of place"


@pytest.mark.parametrize("ring_slots", [None, 10])  # 10: loans come from the backlog too
def test_a_loan_ends_at_add_frame_so_a_later_write_raises(tmp_path, ring_slots):
    with Pipeline(tmp_path, fps=30, cameras=CAMS, backend="thread", ring_slots=ring_slots,
                  encoder=LOW_DELAY) as pipe:  # fmt: skip
        for i in range(30):
            buf = pipe.loan("front")
            buf[...] = smooth_frame(i, H, W)
            pipe.add_frame({"front": buf, "wrist": smooth_frame(i, H, W)}, task="t")
            with pytest.raises(ValueError, match="read-only"):
                buf[:16] = 255  # wrote the recorded frame silently before
            unused = pipe.loan("wrist")
            pipe.loan("wrist")  # a second loan ends the first
            assert not unused.flags.writeable
        result = pipe.finish_episode()
    frames, _ = decode_video(result.videos["front"].path)
    worst = min(psnr(f, smooth_frame(i, H, W)) for i, f in enumerate(frames))
    assert len(frames) == 30 and worst >= 35, f"a frame changed after add_frame ({worst:.1f} dB)"


def test_loan_of_an_unknown_camera_names_it(tmp_path):
    with Pipeline(tmp_path, fps=30, cameras=CAMS, backend="thread") as pipe:
        with pytest.raises(FrameError, match="'side'"):
            pipe.loan("side")
