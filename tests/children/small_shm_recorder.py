"""Start a pipeline whose /dev/shm may be too small (the test mounts a 64 MiB tmpfs for it).

Usage: python small_shm_recorder.py ROOT CAMERAS HEIGHT WIDTH RING_BUDGET_BYTES|default FRAMES.
Prints one JSON line: either the exception start() raised ("refused": its type, whether it is a
RuntimeError, its message) or what was recorded ("recorded"), and in both cases the shmpipe
objects this /dev/shm still holds once the pipeline is gone. A SIGBUS kills the process instead,
so no line at all means Python never got a chance to raise.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from shmpipe import Pipeline

root, count, height, width, budget, frames = sys.argv[1:7]
shape = (int(height), int(width), 3)
cameras = {f"cam{i}": shape for i in range(int(count))}
options = {} if budget == "default" else {"ring_budget_bytes": int(budget)}
out: dict = {}
try:
    pipe = Pipeline(root, fps=30, cameras=cameras, backend="process", **options)
    pipe.start()
except Exception as exc:
    out = {
        "outcome": "refused",
        "type": type(exc).__name__,
        "runtime_error": isinstance(exc, RuntimeError),
        "message": str(exc),
    }
else:
    try:
        for i in range(int(frames)):
            pipe.add_frame({name: np.full(shape, i % 256, np.uint8) for name in cameras}, task="t")
        result = pipe.finish_episode()
        out = {
            "outcome": "recorded",
            "num_frames": result.num_frames,
            "videos": {name: v[0] for name, v in result.videos.items()},
        }
    finally:
        pipe.close()
out["shm_left"] = sorted(e for e in os.listdir("/dev/shm") if "shmpipe" in e)
print(json.dumps(out), flush=True)
