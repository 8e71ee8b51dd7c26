"""Faults injected for real: killed workers are restarted and the episode keeps every frame."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from shmpipe import Pipeline
from tests.helpers.frames import smooth_frame, textured_frame
from tests.helpers.media import decode_video, psnr
from tests.helpers.oracles import exact_image_stats

FPS = 30


def add_paced(pipe, frames, start, stop, period=1 / FPS):
    for i in range(start, stop):
        pipe.add_frame({name: frames[name][i] for name in pipe.cameras}, task="t")
        time.sleep(period)


def wait_for_new_pid(pipe, camera, old_pid, frames, i, limit_s=1.0) -> tuple[float, int]:
    """Keep recording at 30 Hz until status() shows a new worker; (seconds taken, next frame)."""
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < 5:
        pipe.add_frame({name: frames[name][i] for name in pipe.cameras}, task="t")
        i += 1
        status = pipe.status()
        pid = status.stats.worker_pid if camera == "stats" else status.cameras[camera].worker_pid
        if pid != old_pid:
            return time.monotonic() - killed_at, i
        time.sleep(1 / FPS)
    raise AssertionError(f"{camera}: no restart within 5 s")


def test_killed_encoder_is_restarted_and_the_episode_keeps_every_frame(tmp_path):
    cams = {"front": (240, 320, 3), "wrist": (240, 320, 3)}
    n = 150
    frames = {name: [smooth_frame(i, 240, 320, c) for i in range(n)] for c, name in enumerate(cams)}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="process") as pipe:
        add_paced(pipe, frames, 0, 70)
        old = pipe.status().cameras["front"].worker_pid
        os.kill(old, signal.SIGKILL)
        detected_s, i = wait_for_new_pid(pipe, "front", old, frames, 70)
        add_paced(pipe, frames, i, n, period=0.005)
        result = pipe.finish_episode()
    print(f"encoder SIGKILL: restarted after {detected_s:.3f} s; {len(frames['front'])} frames")
    assert detected_s < 1.0, f"restart took {detected_s:.2f} s"
    assert result.worker_restarts == 1
    assert result.num_frames == n
    for name in cams:
        decoded, times = decode_video(result.videos[name][0])
        assert len(decoded) == n, f"{name}: {len(decoded)} of {n} frames"
        np.testing.assert_allclose(times, np.arange(n) / FPS, atol=1e-4)
        worst = min(psnr(a, b) for a, b in zip(decoded, frames[name], strict=True))
        assert worst >= 35, f"{name}: worst PSNR {worst:.1f} dB: frames out of place after restart"
    assert not list(tmp_path.rglob("*.partial*")), "segments left behind"


def test_killed_stats_worker_is_restarted_and_stats_stay_exact(
    tmp_path,
):
    cams = {"front": (120, 160, 3)}
    n = 90
    frames = {"front": [textured_frame(i, 120, 160) for i in range(n)]}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="process") as pipe:
        add_paced(pipe, frames, 0, 40)
        old = pipe.status().stats.worker_pid
        os.kill(old, signal.SIGKILL)
        detected_s, i = wait_for_new_pid(pipe, "stats", old, frames, 40)
        add_paced(pipe, frames, i, n, period=0.002)
        result = pipe.finish_episode()
    print(f"stats SIGKILL: restarted after {detected_s:.3f} s")
    assert detected_s < 1.0
    assert result.worker_restarts == 1
    expected = exact_image_stats(frames["front"])
    for key, value in expected.items():
        np.testing.assert_allclose(
            result.stats["front"][key], value, rtol=1e-12, atol=1e-12, err_msg=key
        )


def test_encoder_killed_during_finish_still_delivers_the_episode(tmp_path):
    cams = {"front": (240, 320, 3)}
    n = 120
    frames = {"front": [smooth_frame(i, 240, 320) for i in range(n)]}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="process") as pipe:
        add_paced(pipe, frames, 0, n, period=0)  # unpaced: much is still unencoded at finish
        os.kill(pipe.status().cameras["front"].worker_pid, signal.SIGKILL)
        result = pipe.finish_episode()
    assert result.worker_restarts == 1
    decoded, _ = decode_video(result.videos["front"][0])
    assert len(decoded) == n
    assert min(psnr(a, b) for a, b in zip(decoded, frames["front"], strict=True)) >= 35


def test_encoder_thread_that_crashes_is_restarted_and_keeps_every_frame(tmp_path, monkeypatch):
    """Thread backend: a worker thread cannot be SIGKILLed, but it can die of a bug."""
    from workers import encoder

    original = encoder.EncoderLoop.encode_available
    calls = {"n": 0}

    def crash_once(self):
        original(self)
        if self.camera == "front" and self.held.next_seq >= 60 and not calls["n"]:
            calls["n"] += 1
            raise RuntimeError("injected encoder bug")

    monkeypatch.setattr(encoder.EncoderLoop, "encode_available", crash_once)
    cams = {"front": (240, 320, 3)}
    n = 120
    frames = {"front": [smooth_frame(i, 240, 320) for i in range(n)]}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="thread") as pipe:
        add_paced(pipe, frames, 0, n, period=0.01)
        result = pipe.finish_episode()
    assert calls["n"] == 1
    assert result.worker_restarts == 1
    decoded, _ = decode_video(result.videos["front"][0])
    assert len(decoded) == n
    assert min(psnr(a, b) for a, b in zip(decoded, frames["front"], strict=True)) >= 35
