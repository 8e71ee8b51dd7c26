"""Does saving an episode cost O(that episode)? Record many short episodes into one dataset.

`python -m bench.dataset_growth --episodes 200 --out DIR`: 2 cameras 96x128, 30 frames per
episode, unpaced, default (process) backend. Prints finish_episode seconds for the first and last
episodes (medians of the first and last ten too) and the total, and writes DIR/growth.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from shmpipe import Pipeline


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--out", default="bench/out/growth")
    args = parser.parse_args(argv)
    out = Path(args.out)
    root = out / "dataset"
    shutil.rmtree(root, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    cams = {"observation.images.cam0": (96, 128, 3), "observation.images.cam1": (96, 128, 3)}
    feats = {"observation.state": (6,), "action": (6,)}
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(8)]
    finish = []
    start = time.perf_counter()
    with Pipeline(root, fps=30, cameras=cams, features=feats) as pipe:
        for episode in range(args.episodes):
            for i in range(args.frames):
                state = np.full(6, episode + i / 100, np.float32)
                frame = {name: images[(i + c) % 8] for c, name in enumerate(cams)}
                pipe.add_frame({**frame, "observation.state": state, "action": -state}, task="t")
            finish.append(pipe.finish_episode().timings)
    total = time.perf_counter() - start
    totals = [t["total"] for t in finish]
    summary = {
        "episodes": args.episodes,
        "first_finish_s": totals[0],
        "last_finish_s": totals[-1],
        "median_first10_s": float(np.median(totals[:10])),
        "median_last10_s": float(np.median(totals[-10:])),
        "median_meta_first10_s": float(np.median([t["meta"] + t["stats"] for t in finish[:10]])),
        "median_meta_last10_s": float(np.median([t["meta"] + t["stats"] for t in finish[-10:]])),
        "sum_finish_s": float(sum(totals)),
        "wall_s": total,
    }
    (out / "growth.json").write_text(json.dumps({"summary": summary, "timings": finish}, indent=1))
    for key, value in summary.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
