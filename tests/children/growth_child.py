"""A recorder that saves EPISODES seeded episodes of FRAMES frames, then, in mode "kill", starts
one more and adds frames until it is killed (one JSON line says it is under way); in mode "clean"
it closes.

Usage: python growth_child.py ROOT EPISODES FRAMES MODE. Thread backend: the control process
is the one that dies.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from shmpipe import Pipeline

root, episodes, frames, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
CAMERAS = {"front": (48, 64, 3)}
FEATURES = {"observation.state": (6,)}


def frame(rng: np.random.Generator) -> dict:
    return {"front": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
            "observation.state": rng.standard_normal(6).astype(np.float32)}  # fmt: skip


with Pipeline(root, fps=30, cameras=CAMERAS, features=FEATURES, backend="thread") as pipe:
    rng = np.random.default_rng(7)
    for episode in range(episodes):
        for _ in range(frames):
            pipe.add_frame(frame(rng), task=f"task {episode % 3}")
        pipe.finish_episode()
    if mode == "clean":
        print(json.dumps({"saved": episodes}), flush=True)
        sys.exit(0)
    for _ in range(frames // 2):
        pipe.add_frame(frame(rng), task="never saved")
    print(json.dumps({"saved": episodes, "open": frames // 2}), flush=True)
    while True:
        pipe.add_frame(frame(rng), task="never saved")
