"""Every worker restart is a WARNING on the `shmpipe` logger: which worker (pid), why (died with
its exit code, or stalled for how long), and how many frames its replacement reads again."""

from __future__ import annotations

import logging
import os
import re
import signal
import time

from shmpipe import Pipeline
from tests.helpers.episodes import assert_flat_episode
from tests.helpers.frames import flat_frame, value_of

FPS = 30
CAMS = {"front": (96, 128, 3), "wrist": (96, 128, 3)}


def record_until_restarted(pipe, start: int, old_pid: int) -> int:
    """Add frames at 30 Hz until the front encoder has a new pid (10 s at most); next frame."""
    k, deadline = start, time.monotonic() + 10
    while pipe.status().cameras["front"].worker_pid == old_pid:
        assert time.monotonic() < deadline, "no restart within 10 s"
        pipe.add_frame(flat_frame(CAMS, k), task="t")
        k += 1
        time.sleep(1 / FPS)
    return k


def restart_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "restarted" in r.getMessage()]  # fmt: skip


def test_a_killed_encoder_is_named_with_its_exit_code_and_the_frames_replayed(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="shmpipe"), Pipeline(
        tmp_path, fps=FPS, cameras=CAMS, backend="process"
    ) as pipe:
        for k in range(20):
            pipe.add_frame(flat_frame(CAMS, k), task="t")
        old = pipe.status().cameras["front"].worker_pid
        os.kill(old, signal.SIGKILL)
        n = record_until_restarted(pipe, 20, old)
        result = pipe.finish_episode()
    assert result.worker_restarts == 1
    assert_flat_episode(result, [value_of(k) for k in range(n)])
    (warning,) = restart_warnings(caplog)
    pattern = (rf"encoder worker for camera 'front' \(pid {old}\) died.*exit code -9; "
               r"restarted, replaying (\d+) frames from its ring")  # fmt: skip
    match = re.fullmatch(pattern, warning)
    assert match and int(match[1]) <= n, warning


def test_a_stalled_encoder_is_named_with_how_long_it_stalled(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="shmpipe"), Pipeline(
        tmp_path, fps=FPS, cameras=CAMS, backend="process", stall_timeout_s=1.0
    ) as pipe:
        for k in range(20):
            pipe.add_frame(flat_frame(CAMS, k), task="t")
        old = pipe.status().cameras["front"].worker_pid
        os.kill(old, signal.SIGSTOP)
        try:
            n = record_until_restarted(pipe, 20, old)
        finally:
            os.kill(old, signal.SIGCONT) if _exists(old) else None
        result = pipe.finish_episode()
    assert_flat_episode(result, [value_of(k) for k in range(n)])
    (warning,) = restart_warnings(caplog)
    match = re.fullmatch(rf"encoder worker for camera 'front' \(pid {old}\) stalled: no "
                         r"heartbeat for (\d+\.\d) s.*; restarted, replaying \d+ frames from "
                         r"its ring", warning)  # fmt: skip
    assert match and float(match[1]) >= 1.0, warning


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
