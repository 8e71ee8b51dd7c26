"""A recorder meant to run in a PID namespace of its own that shares /dev/shm with the test.

Usage: python ns_recorder.py ROOT. Records at 30 Hz; prints one JSON line with its pid (as its
own namespace sees it) and its shared-memory objects, keeps recording until a line arrives on
stdin (the test sweeps "dead owners" meanwhile), then records 15 more frames, finishes the
episode and prints a second JSON line with what it recorded.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from pathlib import Path

import numpy as np

from shmpipe import Pipeline
from shmpipe.ipc import names

# run as a script: its folder is on sys.path, the repository root (for tests.helpers) is not
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.helpers.frames import value_of  # noqa: E402

root = sys.argv[1]
SHAPE = (48, 64, 3)
CAMERAS = {"front": SHAPE, "wrist": SHAPE}


def add(pipe, k: int) -> None:
    pipe.add_frame({name: np.full(SHAPE, value_of(k), np.uint8) for name in CAMERAS}, task="t")
    time.sleep(1 / 30)


with Pipeline(root, fps=30, cameras=CAMERAS, backend="process") as pipe:
    k = 0
    for _ in range(15):
        add(pipe, k)
        k += 1
    own = [e for e in names.list_objects() if names.owner_pid(e) == os.getpid()]
    print(json.dumps({"pid": os.getpid(), "objects": own}), flush=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not select.select([sys.stdin], [], [], 0)[0]:
        add(pipe, k)
        k += 1
    sys.stdin.readline()
    for _ in range(15):
        add(pipe, k)
        k += 1
    result = pipe.finish_episode()
    print(
        json.dumps(
            {
                "values": [value_of(i) for i in range(k)],
                "num_frames": result.num_frames,
                "worker_restarts": result.worker_restarts,
                "videos": {name: v[0] for name, v in result.videos.items()},
                "data": result.data,
            }
        ),
        flush=True,
    )
