"""Record two short episodes under whatever limits this process was started with.

Usage: python limited_recorder.py ROOT. Prints one JSON line: "refused" (start() raised: type
and message), "lost" (an episode failed after start(): the message) or "recorded"."""

from __future__ import annotations

import json
import sys

import numpy as np

from shmpipe import Pipeline

CAMERA = "observation.images.front"
try:
    pipe = Pipeline(sys.argv[1], fps=30, cameras={CAMERA: (32, 32, 3)}, control_priority=None)
    pipe.start()
except Exception as exc:
    print(json.dumps({"outcome": "refused", "type": type(exc).__name__, "message": str(exc)}))
    sys.exit(0)
with pipe:
    try:
        for _ in range(2):
            for i in range(20):
                pipe.add_frame({CAMERA: np.full((32, 32, 3), i, np.uint8)}, task="t")
            pipe.finish_episode()
    except Exception as exc:
        print(json.dumps({"outcome": "lost", "message": f"{type(exc).__name__}: {exc}"}))
        sys.exit(0)
print(json.dumps({"outcome": "recorded"}))
