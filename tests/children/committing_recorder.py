"""A recorder that commits short episodes back to back, for readers to watch and tests to kill.

Usage: python committing_recorder.py ROOT EPISODES. Opens the dataset and prints
{"opened": next episode, "temporaries": files under ROOT a reader must not see and a start()
must have removed}; then per episode prints {"finishing": k} right before finish_episode and
{"committed": k} after it. Frames come at 30 fps. EPISODES < 0: until killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from shmpipe import Pipeline

root, episodes = Path(sys.argv[1]), int(sys.argv[2])
CAMERAS = {"front": (32, 48, 3), "wrist": (32, 48, 3)}
TEMPORARY = (".partial", ".joining", ".packing")


def frame(i: int) -> dict:
    image = np.full((32, 48, 3), (i * 7) % 256, np.uint8)
    return {"front": image, "wrist": image, "observation.state": np.full(2, i, np.float32)}


def temporaries() -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if any(mark in p.name for mark in TEMPORARY)]  # fmt: skip


def say(**line) -> None:
    print(json.dumps(line), flush=True)


with Pipeline(root, fps=30, cameras=CAMERAS, features={"observation.state": (2,)},
              backend="thread", control_priority=None) as pipe:  # fmt: skip
    say(opened=pipe.next_episode_index, temporaries=temporaries())
    k = 0
    while episodes < 0 or k < episodes:
        for i in range(6 + k % 5):  # at 30 fps, as a rig records
            pipe.add_frame(frame(i), task=f"task {k % 3}")
            time.sleep(1 / 30)
        say(finishing=pipe.next_episode_index)
        say(committed=pipe.finish_episode().episode_index)
        k += 1
