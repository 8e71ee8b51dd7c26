"""Depth cameras: uint16 mm stored as LeRobot stores depth, bit-exact round trip, exact stats."""

from __future__ import annotations

import json
import os
import signal
import time

import av
import numpy as np
import pytest

from shmpipe import FrameError, Pipeline, depth
from tests.helpers.frames import smooth_frame
from tests.helpers.media import decode_video, psnr

FPS = 30
H, W = 96, 128
CAMS = {"rgb": (H, W, 3), "depth": (H, W, 1)}


def depth_frame(i: int) -> np.ndarray:
    """Every value 0..65535 over the episode (0 = no data, 65535 the max), plus a moving ramp."""
    flat = (np.arange(H * W, dtype=np.int64) * 7 + i * H * W * 7) % 65536
    frame = flat.astype(np.uint16).reshape(H, W)
    frame[0, 0], frame[0, 1] = 0, 65535
    return frame


def decode_depth(path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pairs = [(f.to_ndarray(format="gray12le"), float(f.pts * stream.time_base))
                 for f in container.decode(stream)]  # fmt: skip
    return [p[0] for p in pairs], [p[1] for p in pairs]


def exact_depth_stats(frames: list[np.ndarray]) -> dict[str, float]:
    """numpy over the stored values (mm of the codes), downsampled as LeRobot does."""
    k = 1 if max(H, W) < 300 else int(max(H, W) / 150)
    mm = np.concatenate([depth.dequantize(depth.quantize(f[::k, ::k])).ravel() for f in frames])
    mm = mm.astype(np.float64)
    out = {"min": mm.min(), "max": mm.max(), "mean": mm.mean(), "std": mm.std()}
    for key, q in {"q01": 0.01, "q10": 0.1, "q50": 0.5, "q90": 0.9, "q99": 0.99}.items():
        out[key] = np.quantile(mm, q)
    return out


def check_depth_video(path, frames, n):
    decoded, times = decode_depth(path)
    assert len(decoded) == n
    np.testing.assert_allclose(times, np.arange(n) / FPS, atol=1e-4)
    for i, (got, sent) in enumerate(zip(decoded, frames, strict=True)):
        assert np.array_equal(got, depth.quantize(sent)), f"depth frame {i}: codes differ"
        expected_mm = depth.dequantize(depth.quantize(sent))
        assert np.array_equal(depth.dequantize(got), expected_mm), f"depth frame {i}: mm differ"


def test_depth_round_trip_is_bit_exact_with_exact_stats(tmp_path, backend):
    n = 20
    rgb = [smooth_frame(i, H, W) for i in range(n)]
    dep = [depth_frame(i) for i in range(n)]
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS) as pipe:
        for i in range(n):
            image = dep[i] if i % 2 else dep[i][..., None]  # (H, W) and (H, W, 1)
            pipe.add_frame({"rgb": rgb[i], "depth": image}, task="t")
        result = pipe.finish_episode()
    check_depth_video(result.videos["depth"][0], dep, n)
    decoded, _ = decode_video(result.videos["rgb"][0])
    assert min(psnr(a, b) for a, b in zip(decoded, rgb, strict=True)) >= 35
    expected = exact_depth_stats(dep)
    dataset_stats = json.loads((tmp_path / "meta" / "stats.json").read_text())["depth"]
    for key, value in expected.items():
        assert result.stats["depth"][key].shape == (1, 1, 1)
        assert result.stats["depth"][key].item() == pytest.approx(value, rel=1e-12), key
        assert dataset_stats[key] == [[[result.stats["depth"][key].item()]]], key
    assert result.stats["depth"]["count"].tolist() == [n * H * W]
    info = json.loads((tmp_path / "meta" / "info.json").read_text())["features"]["depth"]
    assert info["dtype"] == "video" and info["shape"] == [H, W, 1]
    assert info["names"] == ["height", "width", "channels"]
    assert info["info"]["is_depth_map"] is True and info["info"]["depth_unit"] == "mm"
    assert info["info"]["video.pix_fmt"] == "gray12le" and info["info"]["video.codec"] == "hevc"
    assert info["info"]["video.extra_options"] == {"x265-params": "lossless=1"}
    assert (info["info"]["video.depth_min"], info["info"]["video.depth_max"]) == (0.01, 10.0)
    assert (info["info"]["video.shift"], info["info"]["video.use_log"]) == (3.5, True)


def test_killed_depth_encoder_keeps_every_frame_bit_exact(tmp_path):
    n = 60
    dep = [depth_frame(i) for i in range(n)]
    rgb = [smooth_frame(i, H, W) for i in range(n)]
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS, backend="process") as pipe:
        for i in range(25):
            pipe.add_frame({"rgb": rgb[i], "depth": dep[i]}, task="t")
            time.sleep(1 / FPS)
        old = pipe.status().cameras["depth"].worker_pid
        os.kill(old, signal.SIGKILL)
        for i in range(25, n):
            pipe.add_frame({"rgb": rgb[i], "depth": dep[i]}, task="t")
            time.sleep(1 / FPS)
        result = pipe.finish_episode()
    assert result.worker_restarts >= 1
    check_depth_video(result.videos["depth"][0], dep, n)


@pytest.mark.parametrize(
    "camera, image, expected",
    [
        ("depth", np.zeros((H, W), np.uint8), "uint16 millimetres"),
        ("depth", np.zeros((H, W, 1), np.float32), "uint16 millimetres"),
        ("rgb", np.zeros((H, W, 3), np.uint16), "expected uint8"),
    ],
)
def test_wrong_dtype_for_a_camera_is_refused(tmp_path, camera, image, expected):
    ok = {"rgb": np.zeros((H, W, 3), np.uint8), "depth": np.zeros((H, W), np.uint16)}
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS) as pipe:
        with pytest.raises(FrameError, match=expected) as err:
            pipe.add_frame({**ok, camera: image}, task="t")
        assert repr(camera) in str(err.value)


def test_rolling_depth_keeps_the_window_bit_exact_with_exact_stats(tmp_path):
    rolled, live = 75, 5  # window 30, segments of 30: keep at 75 starts at frame 30
    dep = [depth_frame(i) for i in range(rolled + live)]
    rgb = [smooth_frame(i, H, W) for i in range(rolled + live)]
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS, preroll_s=1.0) as pipe:
        for i in range(rolled + live):
            if i == rolled:
                pipe.keep()
            pipe.add_frame({"rgb": rgb[i], "depth": dep[i]}, task="t")
        result = pipe.finish_episode()
    kept = dep[30:]
    check_depth_video(result.videos["depth"][0], kept, len(kept))
    expected = exact_depth_stats(kept)
    for key, value in expected.items():
        assert result.stats["depth"][key].item() == pytest.approx(value, rel=1e-12), key
    assert result.stats["depth"]["count"].tolist() == [len(kept) * H * W]
