"""A recorder killed between finish_episode(wait=False) and its commit.

Usage: python background_finish_child.py ROOT. Records episode 0 (30 flat frames, committed with
wait=True), then episode 1 (FRAMES textured frames, added as fast as they come: the encoders fall
behind) and finishes it with wait=False, printing {"handed": index, "done": bool} at once; then
records episode 2 at 30 fps until killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from shmpipe import Pipeline

root = Path(sys.argv[1])
CAMERAS = {"front": (240, 320, 3), "wrist": (240, 320, 3)}
FRAMES = 90


def frame(k: int, textured: bool) -> dict:
    value = (k * 37) % 224 + 16
    image = np.full((240, 320, 3), value, np.uint8)
    if textured:
        image[32:] = np.random.default_rng(k).integers(0, 256, (208, 320, 3), np.uint8)
    return {"front": image, "wrist": image, "observation.state": np.full(2, k, np.float32)}


with Pipeline(root, fps=30, cameras=CAMERAS, features={"observation.state": (2,)},
              control_priority=None) as pipe:  # fmt: skip
    for k in range(30):
        pipe.add_frame(frame(k, False), task="first")
    pipe.finish_episode()
    for k in range(FRAMES):
        pipe.add_frame(frame(k, True), task="second")
    handle = pipe.finish_episode(wait=False)
    print(json.dumps({"handed": handle.episode_index, "done": handle.done()}), flush=True)
    k = 0
    while True:
        pipe.add_frame(frame(k, False), task="third")
        k += 1
        time.sleep(1 / 30)
