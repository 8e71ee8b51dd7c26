"""A recording loop that gets Ctrl-C (KeyboardInterrupt) at random moments inside add_frame.

Usage: python ctrl_c_recorder.py ROOT BACKEND ATTEMPTS SEED. A SIGALRM timer, armed just
before each add_frame with a random sub-millisecond delay, sends SIGINT (what Ctrl-C sends)
wherever the call happens to be; the loop catches it and goes on, as a teleop script that
ignores one Ctrl-C would.
Whether an interrupted frame got in is read from status().episode_frames before and after.
Prints one JSON line: the pixel value of every frame that got in (in order), the finished
episode's files, and how long finish_episode took.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from shmpipe import Pipeline

# run as a script: its folder is on sys.path, the repository root (for tests.helpers) is not
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.helpers.frames import value_of  # noqa: E402

root, backend, attempts, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
SHAPE = (48, 64, 3)
CAMERAS = {"front": SHAPE, "wrist": SHAPE, "top": SHAPE}
armed = False


def on_alarm(signum, frame):
    if armed:  # Ctrl-C, as the terminal sends it: SIGINT, whose default handler raises
        os.kill(os.getpid(), signal.SIGINT)


def frame(k: int) -> dict:
    out = {name: np.full(SHAPE, value_of(k), np.uint8) for name in CAMERAS}
    out["observation.state"] = np.full(6, k, np.float32)
    return out


def attempt(pipe, k: int, delay: float) -> bool:
    """One add_frame with a KeyboardInterrupt due after `delay` s; True if it was interrupted."""
    global armed
    try:
        try:
            armed = True
            signal.setitimer(signal.ITIMER_REAL, delay)
            pipe.add_frame(frame(k), task="t")
        finally:
            armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except KeyboardInterrupt:
        armed = False
        return True
    return False


signal.signal(signal.SIGALRM, on_alarm)
rng = random.Random(seed)
accepted: list[int] = []  # pixel value of every frame in the episode, in order
odd: list[str] = []
interrupted = 0
with Pipeline(
    root, fps=30, cameras=CAMERAS, features={"observation.state": (6,)}, backend=backend
) as pipe:
    took = []
    k = 0
    for _ in range(20):  # warm-up, and how long one add_frame takes here
        t0 = time.perf_counter()
        pipe.add_frame(frame(k), task="t")
        took.append(time.perf_counter() - t0)
        accepted.append(value_of(k))
        k += 1
    span = 1.5 * statistics.median(took)
    for _ in range(attempts):
        before = pipe.status().episode_frames
        interrupted += attempt(pipe, k, rng.uniform(1e-6, span))
        after = pipe.status().episode_frames
        if after == before + 1:
            accepted.append(value_of(k))
        elif after != before:
            odd.append(f"attempt {k}: episode_frames went {before} -> {after}")
        k += 1
    for _ in range(10):
        pipe.add_frame(frame(k), task="t")
        accepted.append(value_of(k))
        k += 1
    rows_before_finish = pipe.status().episode_frames
    t0 = time.perf_counter()
    result = pipe.finish_episode()
    finish_s = time.perf_counter() - t0
print(
    json.dumps(
        {
            "accepted": accepted,
            "interrupted": interrupted,
            "add_frame_s": span / 1.5,
            "odd": odd,
            "rows_before_finish": rows_before_finish,
            "num_frames": result.num_frames,
            "videos": {name: v[0] for name, v in result.videos.items()},
            "data": result.data,
            "finish_s": finish_s,
        }
    ),
    flush=True,
)
