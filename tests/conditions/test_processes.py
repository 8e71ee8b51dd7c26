"""Workers and control processes that are killed or stopped (SIGKILL, SIGSTOP, SIGTERM) while
recording: every frame add_frame accepted is in every camera's video and in the rows, API calls
stay bounded, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shmpipe import Pipeline
from shmpipe.ipc import names
from tests.helpers.episodes import assert_marked_episode
from tests.helpers.frames import flat_frame, marked_frames, textured_frame
from tests.helpers.media import decode_video
from tests.helpers.oracles import exact_image_stats
from tests.helpers.paths import CHILDREN
from tests.helpers.processes import kill_if_alive, resume, start_recorder, stop_process

FPS = 30
SMALL = (48, 64, 3)
RECORDER_CHILD = CHILDREN / "recorder_child.py"


def minimum_from(message: str) -> int:
    match = re.search(r"(?:minimum|at least|min\.?)\D{0,40}?(\d+)", message, re.IGNORECASE)
    if match is None:
        numbers = [int(x) for x in re.findall(r"\d+", message)]
        assert numbers, f"the refusal does not state the minimum: {message}"
        return max(numbers)
    return int(match[1])


def kill_encoder_when_ring_nearly_full(root: Path, ring_slots: int | None) -> None:
    """Record faster than the encoder; once it has worked with a nearly full ring for a while
    (it then has frames in flight that are not on disk yet), SIGKILL it."""
    h, w = 240, 320
    frames = marked_frames(61, h, w)
    cams = {"front": (h, w, 3)}
    options = {} if ring_slots is None else {"ring_slots": ring_slots}
    with Pipeline(root, fps=FPS, cameras=cams, backend="process", **options) as pipe:

        def add():
            nonlocal i
            pipe.add_frame({"front": frames[i % len(frames)]}, task="t")
            i += 1

        i = 0
        for _ in range(8):
            add()
        deadline = time.monotonic() + 20
        while pipe.status().cameras["front"].frames_encoded < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        killed, full_at, why = None, None, ""
        prev = pipe.status().cameras["front"]
        while i < 2000:
            add()
            time.sleep(0.0005)  # faster than the encoder, so the ring stays full
            cam = pipe.status().cameras["front"]
            # slots the encoder freed since the last look (the ring got frames_written - ...)
            freed = (cam.frames_written - prev.frames_written) - (cam.slots_used - prev.slots_used)
            was_full = prev.slots_used >= prev.slots_total - 4
            prev = cam
            if not was_full:
                continue
            full_at = cam.frames_encoded if full_at is None else full_at
            # Kill right after the encoder freed slots of a full ring (the frames it let go of
            # may still be inside the codec), or once it has worked a while with the ring full.
            if freed >= 4 and cam.frames_encoded - full_at >= 16:
                why = f"just after it freed {freed} slots of a full ring"
            elif cam.frames_encoded - full_at >= 90:
                why = "after 90 frames encoded with the ring full"
            else:
                continue
            killed = cam.worker_pid
            os.kill(killed, signal.SIGKILL)
            print(
                f"ring {cam.slots_total} slots: encoder killed {why}: {cam.slots_used} used, "
                f"{cam.frames_encoded} encoded, {cam.backlog} in the backlog"
            )
            break
        assert killed is not None, f"the ring never stayed full over {i} frames: {cam}"
        for _ in range(20):
            add()
        result = pipe.finish_episode()
    print(f"{i} frames; worker restarts {result.worker_restarts}")
    assert result.worker_restarts >= 1
    assert_marked_episode(result, "front", frames, i)


@pytest.mark.parametrize("ring_slots", [16, None], ids=["ring_slots=16", "default_ring"])
def test_encoder_killed_while_its_ring_is_nearly_full_loses_no_frame(tmp_path, ring_slots):
    if ring_slots is not None:
        try:
            Pipeline(tmp_path / "probe", fps=FPS, cameras={"front": (240, 320, 3)},
                     ring_slots=ring_slots, backend="process").start().close()  # fmt: skip
        except ValueError as exc:
            assert re.search(r"ring_slots", str(exc)), str(exc)
            minimum = minimum_from(str(exc))
            print(f"ring_slots={ring_slots} refused ({exc}); running at the minimum {minimum}")
            assert minimum > ring_slots, f"stated minimum {minimum} does not exceed {ring_slots}"
            ring_slots = minimum
        shutil.rmtree(tmp_path / "probe", ignore_errors=True)
    kill_encoder_when_ring_nearly_full(tmp_path / "rec", ring_slots)


@pytest.mark.soak
def test_encoder_killed_with_a_nearly_full_default_ring_at_720p_loses_no_frame(tmp_path):
    """The issue's second reproduction: default ring, 2 cameras 720p, paced."""
    h, w = 720, 1280
    cams = {"front": (h, w, 3), "wrist": (h, w, 3)}
    frames = {name: marked_frames(31, h, w, phase=c) for c, name in enumerate(cams)}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="process") as pipe:
        start = time.monotonic()
        i, killed, used = 0, None, None
        while killed is None and i < 40 * FPS:
            tick = start + i / FPS
            if tick > time.monotonic():
                time.sleep(tick - time.monotonic())
            pipe.add_frame({name: frames[name][i % 31] for name in cams}, task="t")
            i += 1
            cam = pipe.status().cameras["front"]
            if cam.slots_used >= cam.slots_total - 4:
                killed, used = cam.worker_pid, (cam.slots_used, cam.slots_total)
                os.kill(killed, signal.SIGKILL)
        if killed is None:  # the encoder kept up: kill it anyway, at whatever fill it has
            cam = pipe.status().cameras["front"]
            killed, used = cam.worker_pid, (cam.slots_used, cam.slots_total)
            os.kill(killed, signal.SIGKILL)
        for _ in range(2 * FPS):
            pipe.add_frame({name: frames[name][i % 31] for name in cams}, task="t")
            i += 1
            time.sleep(1 / FPS)
        result = pipe.finish_episode()
    print(f"ring {used[1]} slots: encoder killed at {used[0]} used; {i} frames")
    assert result.worker_restarts >= 1
    for name in cams:
        assert_marked_episode(result, name, frames[name], i, psnr_every=7)


@contextlib.contextmanager
def stopped_worker(root: Path, cams: dict, stall: float, add, worker):
    """A process-backend pipeline with stall_timeout_s=stall: 30 frames added through add(pipe)
    at FPS, then the worker whose status is worker(status()) SIGSTOPped; yields (pipe, pid). The
    worker is resumed on the way out, and killed if it still runs once the pipeline is closed."""
    with Pipeline(root, fps=FPS, cameras=cams, backend="process", stall_timeout_s=stall) as pipe:
        for _ in range(30):
            add(pipe)
            time.sleep(1 / FPS)
        pid = worker(pipe.status()).worker_pid
        os.kill(pid, signal.SIGSTOP)
        try:
            yield pipe, pid
        finally:
            resume(pid)
    kill_if_alive(pid)


def watch_stalled(pipe, pid: int, add, worker, more=lambda: True) -> tuple[float, float]:
    """For 1.2 s (and while more()), add(pipe) at FPS and read worker(status()): the largest
    stalled_s seen while the worker still had pid `pid`, and the slowest add_frame + status()."""
    stalled, slowest = 0.0, 0.0
    stopped_at = time.monotonic()
    while time.monotonic() - stopped_at < 1.2 and more():
        t0 = time.perf_counter()
        add(pipe)
        status = worker(pipe.status())
        slowest = max(slowest, time.perf_counter() - t0)
        if status.worker_pid == pid:
            stalled = max(stalled, status.stalled_s)
        time.sleep(1 / FPS)
    return stalled, slowest


def test_sigstopped_encoder_is_replaced_and_the_episode_keeps_every_frame(tmp_path):
    stall = 2.0
    frames = marked_frames(61, 96, 128)
    cams = {"front": (96, 128, 3), "wrist": (96, 128, 3)}
    n = 0

    def add(pipe):
        nonlocal n
        pipe.add_frame({name: frames[n % len(frames)] for name in cams}, task="t")
        n += 1

    def encoder(status):
        return status.cameras["front"]

    with stopped_worker(tmp_path, cams, stall, add, encoder) as (pipe, pid):
        stalled, slowest = watch_stalled(pipe, pid, add, encoder)
        t0 = time.monotonic()
        result = pipe.finish_episode()
        took = time.monotonic() - t0
        after = pipe.status().cameras["front"]
    print(
        f"encoder SIGSTOP: stalled_s seen {stalled:.2f}, slowest add_frame+status {slowest:.3f} s, "
        f"finish_episode {took:.2f} s, restarts {result.worker_restarts}"
    )
    assert stalled > 0, "status() never showed the stopped encoder as stalled"
    assert slowest < stall + 1, f"an API call blocked {slowest:.1f} s"
    assert took < stall + 10, f"finish_episode took {took:.1f} s with a stopped encoder"
    assert result.worker_restarts >= 1
    assert after.worker_pid != pid and after.alive
    for name in cams:
        assert_marked_episode(result, name, frames, n)


def test_sigstopped_stats_worker_is_replaced_and_stats_stay_exact(tmp_path):
    stall = 2.0
    frames = [textured_frame(i, 60, 80) for i in range(120)]
    cams = {"front": (60, 80, 3)}
    n = 0

    def add(pipe):
        nonlocal n
        pipe.add_frame({"front": frames[n]}, task="t")
        n += 1

    def stats_worker(status):
        return status.stats

    with stopped_worker(tmp_path, cams, stall, add, stats_worker) as (pipe, pid):
        stalled, _ = watch_stalled(pipe, pid, add, stats_worker, more=lambda: n < len(frames))
        t0 = time.monotonic()
        result = pipe.finish_episode()
        took = time.monotonic() - t0
    print(f"stats SIGSTOP: stalled_s seen {stalled:.2f}, finish_episode {took:.2f} s")
    assert stalled > 0, "status() never showed the stopped stats worker as stalled"
    assert took < stall + 10, f"finish_episode took {took:.1f} s with a stopped stats worker"
    assert result.worker_restarts >= 1
    expected = exact_image_stats(frames[:n])
    for key, value in expected.items():
        np.testing.assert_allclose(
            result.stats["front"][key], value, rtol=1e-12, atol=1e-12, err_msg=key
        )
    decoded, _ = decode_video(result.videos["front"][0])
    assert len(decoded) == n


def test_close_with_a_sigstopped_encoder_returns_within_the_stall_bound(tmp_path):
    stall = 2.0
    cams = {"front": SMALL}
    pipe = Pipeline(tmp_path, fps=FPS, cameras=cams, backend="process", stall_timeout_s=stall)
    pipe.start()
    pid = pipe.status().cameras["front"].worker_pid
    try:
        for k in range(10):
            pipe.add_frame(flat_frame(cams, k), task="t")
        os.kill(pid, signal.SIGSTOP)
        for k in range(10, 20):
            pipe.add_frame(flat_frame(cams, k), task="t")
        t0 = time.monotonic()
        pipe.close()
        took = time.monotonic() - t0
    finally:
        kill_if_alive(pid)
        resume(pid)
        pipe.close()
    print(f"close() with a stopped encoder: {took:.2f} s")
    assert took < stall + 3, f"close() took {took:.1f} s"
    deadline = time.monotonic() + 2.0  # killed by close(), reaped off the control thread
    while names.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not names.pid_alive(pid)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_control_process_leaves_no_partial_video(tmp_path, sig):
    child, info = start_recorder([sys.executable, str(RECORDER_CHILD), str(tmp_path), "process"])
    try:
        pids = info["pids"]
        deadline = time.monotonic() + 3
        while not list(tmp_path.glob("videos/**/*.partial*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(tmp_path.glob("videos/**/*.partial*")), "no segment was open to leave"
        child.send_signal(sig)
        child.wait(timeout=10)
        killed_at = time.monotonic()
        left = list(tmp_path.glob("videos/**/*.partial*"))
        while left and time.monotonic() - killed_at < 3:
            time.sleep(0.02)
            left = list(tmp_path.glob("videos/**/*.partial*"))
        took = time.monotonic() - killed_at
        _, err = child.communicate(timeout=10)
    finally:
        stop_process(child)
    print(f"{sig.name}: segments gone after {took:.2f} s; stderr tail: {err[-300:]!r}")
    assert left == [], f"{[p.relative_to(tmp_path).as_posix() for p in left]} left after 3 s"
    assert not [e for e in names.list_objects() if names.owner_pid(e) == child.pid]
    assert all(not names.pid_alive(p) for p in pids), "workers outlived their owner"


def test_close_of_a_three_camera_pipeline_is_quick_and_stops_every_worker(tmp_path):
    cams = {"front": SMALL, "wrist": SMALL, "top": SMALL}
    pipe = Pipeline(tmp_path, fps=FPS, cameras=cams, backend="process").start()
    try:
        for k in range(5):
            pipe.add_frame(flat_frame(cams, k), task="t")
        pipe.finish_episode()
        status = pipe.status()
        pids = [c.worker_pid for c in status.cameras.values()] + [status.stats.worker_pid]
        t0 = time.perf_counter()
        pipe.close()
        took = time.perf_counter() - t0
        alive = [p for p in pids if names.pid_alive(p)]
    finally:
        pipe.close()
    print(f"close() of 3 cameras: {took:.3f} s (target 0.3 s)")
    assert alive == [], f"workers {alive} still running after close() returned"
    assert took < 1.0, f"close() took {took:.2f} s"
