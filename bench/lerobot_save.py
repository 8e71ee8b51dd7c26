"""`save_episode` of LeRobot's real lerobot-record: through shmpipe (`shmpipe lerobot-record`)
against LeRobot's own writer, its default (PNG files, encoded at save) and its streaming encoder,
on the tests' mock counter robot (2 cameras 240x320, 6 joints; tests/integrations).

    python -m bench.lerobot_save --lerobot-python VENV/bin/python [--episodes 3 --seconds 5]

Each variant runs in a fresh process of that Python (a LeRobot venv with shmpipe installed),
records `--episodes` episodes of `--seconds`, and reports every save_episode's seconds (timed
around the dataset's own save_episode); the table gives the median per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROBOT_DIR = REPO / "tests" / "integrations"
VARIANTS = {"shmpipe": [], "lerobot": [],
            "lerobot-streaming": ["--dataset.streaming_encoding=true"]}  # fmt: skip

DRIVER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
variant, argv = sys.argv[2], sys.argv[3:]
from lerobot.scripts import lerobot_record
import lerobot_counter_robot  # noqa: F401  (registers the mock robot and teleop)
times = []
if variant == "shmpipe":
    import shmpipe.integrations.lerobot as shm
    handle = shm.install()
else:
    real = lerobot_record.LeRobotDataset
    own = real.save_episode
    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return own(self, *args, **kwargs)
        finally:
            times.append(time.perf_counter() - started)
    real.save_episode = timed
sys.argv = ["lerobot-record", *argv]
lerobot_record.main()
if variant == "shmpipe":
    times = [took for _, _, took in handle.recorders[0].saved]
    handle.undo()
    for recorder in handle.recorders:
        recorder.finalize()
print("SAVE_TIMES " + json.dumps(times))
"""


def run_variant(python: str, variant: str, root: Path, episodes: int, seconds: float) -> list:
    argv = [
        "--robot.type=shmpipe_counter", "--robot.id=mock",
        "--teleop.type=shmpipe_counter_teleop", "--teleop.id=mock",
        "--dataset.repo_id=bench/save", f"--dataset.root={root}",
        "--dataset.single_task=count", "--dataset.fps=30",
        f"--dataset.episode_time_s={seconds}", "--dataset.reset_time_s=0.5",
        f"--dataset.num_episodes={episodes}", "--dataset.push_to_hub=false",
        "--display_data=false", "--play_sounds=false", *VARIANTS[variant],
    ]  # fmt: skip
    done = subprocess.run([python, "-c", DRIVER, str(ROBOT_DIR), variant, *argv],
                          capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)})
    line = next((x for x in done.stdout.splitlines() if x.startswith("SAVE_TIMES ")), None)
    if done.returncode != 0 or line is None:
        sys.exit(f"{variant}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(line.split(" ", 1)[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lerobot-python", required=True)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            times = run_variant(args.lerobot_python, variant, Path(tmp) / variant,
                                args.episodes, args.seconds)  # fmt: skip
            rows.append((variant, times))
            print(f"{variant}: save_episode {', '.join(f'{t:.3f}' for t in times)} s", flush=True)
    print("\n| writer | save_episode median s | runs (s) |\n|---|---|---|")
    for variant, times in rows:
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"| {variant} | {statistics.median(times):.2f} | {runs} |")


if __name__ == "__main__":
    main()
