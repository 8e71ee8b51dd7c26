"""Issue 25 item 1's repro: unpaced 1,000-frame episodes of 32x32 beside two busy loops.

`add_frame` is called as fast as it returns, so the encoder runs flat out beside the busy
loops; SVT-AV1 has then been seen to emit a frame out of order (~1 episode in 30 before the
encoder learnt to encode again from its last durable frame). Prints failed episodes and how
often a worker encoded again (its "encoding again" warnings), per backend; then `shmpipe verify`
of the dataset (each video's frames counted against its episode's rows; --decode decodes them,
~800 frames/s here).

    python3 -m bench.unpaced_soak --episodes 300 --backend process
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from shmpipe.tools.verify import verify_dataset

CAMERA = "observation.images.front"
BUSY = "while True: pass"


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.again = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.again += "encoding again" in record.getMessage()


def soak(root: Path, episodes: int, frames: int) -> tuple[int, list[str]]:
    """(episodes failed, their errors); the pipeline goes on after a failure."""
    from shmpipe import Pipeline

    images = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    errors = []
    with Pipeline(root, fps=30, cameras={CAMERA: (32, 32, 3)},
                  features={"observation.state": (2,)}) as pipe:  # fmt: skip
        state = np.zeros(2, np.float32)
        for _ in range(episodes):
            try:
                for i in range(frames):
                    pipe.add_frame({CAMERA: images[i % 50], "observation.state": state}, task="t")
                pipe.finish_episode()
            except Exception as exc:  # noqa: BLE001 - counted, and the soak goes on
                errors.append(f"{type(exc).__name__}: {exc}")
                pipe.cancel_episode()
    return len(errors), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--backend", choices=("process", "thread"), default="process")
    parser.add_argument("--busy", type=int, default=2, help="busy loops beside it (nice 0)")
    parser.add_argument("--decode", action="store_true", help="verify by decoding every frame")
    args = parser.parse_args()
    os.environ["SHMPIPE_BACKEND"] = args.backend
    count = _Count()  # the only handler: the backlog's warnings (every episode) are not printed
    logging.getLogger("shmpipe").addHandler(count)
    loops = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy)]
    root = Path(tempfile.mkdtemp(prefix="shmpipe-soak-"))
    try:
        failed, errors = soak(root / "ds", args.episodes, args.frames)
        report = verify_dataset(root / "ds", decode=args.decode)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
        shutil.rmtree(root, ignore_errors=True)
    for error in errors[:10]:
        print("  ", error[:300])
    print(f"{args.backend}: {failed} failed of {args.episodes} unpaced episodes of "
          f"{args.frames} frames beside {args.busy} busy loops; encoded again "
          f"{count.again} times (a worker process logs that to stderr instead)")  # fmt: skip
    print(f"verify{' --decode' if args.decode else ''}: {report.text()}")


if __name__ == "__main__":
    main()
