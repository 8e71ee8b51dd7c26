"""Signal handlers that raise, delivered at random moments inside add_frame, never split a
frame: every camera holds exactly the frames of the rows, in order, and finish returns."""

import ctypes
import ctypes.util
import random
import signal
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe import Pipeline
from tests.helpers.frames import value_of
from tests.helpers.media import decode_video

CAMERAS = {f"observation.images.{n}": (48, 64, 3) for n in ("a", "b", "c")}
RAISED = (MemoryError, SystemExit, KeyboardInterrupt)
FRAMES = 60  # per episode


class SignalTimer:
    """A POSIX timer (timer_create, SIGEV_SIGNAL) that sends `signum` to this process once, a
    given number of seconds after `arm`: the kernel delivers it at that moment, whatever the
    process is doing, with no other process or thread to schedule."""

    class _Event(ctypes.Structure):
        _fields_ = [("value", ctypes.c_void_p), ("signo", ctypes.c_int),
                    ("notify", ctypes.c_int), ("pad", ctypes.c_int * 12)]  # fmt: skip

    class _Spec(ctypes.Structure):
        _fields_ = [("interval_s", ctypes.c_long), ("interval_ns", ctypes.c_long),
                    ("value_s", ctypes.c_long), ("value_ns", ctypes.c_long)]  # fmt: skip

    _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def __init__(self, signum: int) -> None:
        self._id = ctypes.c_void_p()
        event = self._Event(None, signum, 0)  # SIGEV_SIGNAL
        if self._libc.timer_create(time.CLOCK_MONOTONIC, ctypes.byref(event),
                                   ctypes.byref(self._id)) != 0:  # fmt: skip
            raise OSError(ctypes.get_errno(), "timer_create")

    def arm(self, seconds: float) -> None:
        ns = max(1, int(seconds * 1e9))
        spec = self._Spec(0, 0, ns // 1_000_000_000, ns % 1_000_000_000)
        if self._libc.timer_settime(self._id, 0, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timer_settime")

    def close(self) -> None:
        self._libc.timer_delete(self._id)


def _in_add_frame(frame) -> bool:
    """The handler interrupted Pipeline.add_frame (the test's own loop is never interrupted,
    so the test itself cannot be split by a signal)."""
    while frame is not None:
        if frame.f_code.co_name == "add_frame" and "shmpipe" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _raise_memory_error(signum, frame):
    if _in_add_frame(frame):
        raise MemoryError("SIGALRM: a timeout's handler raised")


def _exit(signum, frame):
    if _in_add_frame(frame):
        sys.exit(143)  # what a SIGTERM handler of systemd / docker stop / ROS launch does


def _interrupt(signum, frame):
    if _in_add_frame(frame):
        raise KeyboardInterrupt


def _frame(k: int) -> dict:
    image = np.full((48, 64, 3), value_of(k), np.uint8)
    return {**{name: image for name in CAMERAS}, "observation.state": np.full(2, k, np.float32)}


def _record(pipe: Pipeline, frames: int, timers: list[SignalTimer], rng) -> int:
    """Add `frames` frames, each add_frame with one of the timers armed to fire at a random
    moment between 10 us and the median call time; returns how many calls raised. Whether a
    call that raised added its frame is for the pipeline to say (all or nothing)."""
    raised, median = 0, 300e-6
    took = []
    while (k := pipe.episode_frames) < frames:
        timers[len(took) % len(timers)].arm(rng.uniform(10e-6, median))
        started = time.perf_counter()
        try:
            pipe.add_frame(_frame(k), task="storm")
        except RAISED:
            raised += 1
        took.append(time.perf_counter() - started)
        median = float(np.median(took[-50:]))
    time.sleep(0.01)  # a signal still on its way lands here, not in finish_episode
    return raised


@pytest.fixture
def raising_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGALRM, _raise_memory_error)
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _interrupt)
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def test_raising_signal_handlers_never_split_a_frame(tmp_path, backend, raising_handlers):
    interrupted, episodes, rng = 0, 0, random.Random(0)
    timers = [SignalTimer(s) for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT)]
    with Pipeline(tmp_path / "ds", fps=30, cameras=CAMERAS,
                  features={"observation.state": (2,)}, control_priority=None,
                  stall_timeout_s=5) as pipe:  # fmt: skip
        while interrupted < 200 and episodes < 20:
            interrupted += _record(pipe, FRAMES, timers, rng)
            started = time.monotonic()
            result = pipe.finish_episode()
            assert time.monotonic() - started < 10, "finish_episode took longer than its bound"
            episodes += 1
            rows = pq.read_table(result.data).column("observation.state").to_pylist()
            assert [r[0] for r in rows] == list(range(FRAMES)), "rows out of order"
            for camera in CAMERAS:
                decoded, _ = decode_video(result.videos[camera].path)
                marks = [int(round(f[:8, :8].mean())) for f in decoded]
                assert len(marks) == FRAMES, f"{camera}: {len(marks)} frames for {FRAMES} rows"
                wrong = [k for k, m in enumerate(marks) if abs(m - value_of(k)) > 8]
                assert not wrong, f"{camera}: frames {wrong[:10]} are not their rows' frames"
    for timer in timers:
        timer.close()
    assert interrupted >= 200, f"only {interrupted} signals landed inside add_frame"
