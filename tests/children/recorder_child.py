"""A control process for tests to kill: records, reports its worker pids, keeps recording.

Usage: python recorder_child.py ROOT BACKEND. Prints one JSON line once an episode is finished and
a second one is under way, then adds frames at 30 Hz until it is killed or interrupted.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from shmpipe import Pipeline

root, backend = sys.argv[1], sys.argv[2]
cams = {"front": (48, 64, 3), "wrist": (48, 64, 3)}


def frame(i):
    img = np.full((48, 64, 3), i % 256, np.uint8)
    return {"front": img, "wrist": img, "observation.state": np.full(6, i, np.float32)}


with Pipeline(
    root, fps=30, cameras=cams, features={"observation.state": (6,)}, backend=backend
) as pipe:
    for i in range(10):
        pipe.add_frame(frame(i), task="first")
    first = pipe.finish_episode()
    for i in range(10):
        pipe.add_frame(frame(i), task="second")
    status = pipe.status()
    pids = [c.worker_pid for c in status.cameras.values()] + [status.stats.worker_pid]
    print(json.dumps({"pids": pids, "first": first.videos["front"][0]}), flush=True)
    i = 10
    while True:
        pipe.add_frame(frame(i), task="second")
        i += 1
        time.sleep(1 / 30)
