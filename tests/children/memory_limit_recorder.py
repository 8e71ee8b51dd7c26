"""Start a pipeline in a cgroup with a memory limit (the test puts this process in it).

Usage: python memory_limit_recorder.py ROOT CAMERAS HEIGHT WIDTH FRAMES. Prints one JSON line:
the exception start() raised ("refused": type and message) or, once FRAMES frames are recorded,
the backlog allowance and ring slots start() chose ("recorded")."""

from __future__ import annotations

import json
import sys

import numpy as np

from shmpipe import Pipeline

root, count, height, width, frames = sys.argv[1:6]
shape = (int(height), int(width), 3)
cameras = {f"cam{i}": shape for i in range(int(count))}
try:
    pipe = Pipeline(root, fps=30, cameras=cameras, backend="process", control_priority=None)
    pipe.start()
except Exception as exc:
    print(json.dumps({"outcome": "refused", "type": type(exc).__name__, "message": str(exc)}))
    sys.exit(0)
with pipe:
    for i in range(int(frames)):
        pipe.add_frame({name: np.full(shape, i % 256, np.uint8) for name in cameras}, task="t")
    result = pipe.finish_episode()
    print(json.dumps({"outcome": "recorded", "backlog_bytes": pipe.backlog_bytes,
                      "ring_slots": pipe.ring_slots, "frames": result.num_frames}))  # fmt: skip
