"""lerobot-rollout's strategies through shmpipe and, when LeRobot 0.6 is importable, through
LeRobot's own writer (streaming encoding): the loop's blocked time at each save and flush, late
ticks, frames lost (rows vs decoded frames), the pre-roll's RAM; medians of `--repeats` runs,
each run in a fresh process (bench.rollout_loops reproduces the loops).

    python -m bench.rollout [--strategies episodic,sentry,highlight,dagger]
        [--writers shmpipe,lerobot] [--repeats 3] [--episode-s 10 --episodes 3]
        [--ring-s 10 --live-s 5] [--busy 2] [--no-sys-nice] [--python VENV/bin/python]
        [--out results.json]

3 cameras 480x640 camera-like at 30 Hz by default (bench.frames). `--busy N` runs N busy loops
beside each run (a loaded machine). `--no-sys-nice` runs each run under `setpriv
--bounding-set=-sys_nice`: as a user without CAP_SYS_NICE, no thread can be real-time.
`--python` runs the runs in another interpreter (a LeRobot 0.6.1 venv with shmpipe
importable). A writer that refuses a strategy (a feature dtype it does not store) is reported
as such, not as a failure. Late: a tick that woke more than one period after its schedule;
gap: more than two.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.frames import add_camera_arguments
from bench.rollout_loops import STRATEGIES, Frames, Plan, frames_in_place, run, save_pool

REPO = Path(__file__).resolve().parent.parent
WRITERS = ("shmpipe", "lerobot")
BUSY = "import time\nwhile True: time.time()"


def open_writer(writer: str, plan: Plan, root: Path):
    """A dataset with LeRobot's recording API; raises ImportError if `writer` is not here."""
    if writer == "shmpipe":
        from shmpipe.integrations.lerobot import LeRobotRecorder

        # highlight: the ring is rolling capture, as `shmpipe lerobot-rollout` makes it
        preroll = {"preroll_s": plan.ring_s} if plan.strategy == "highlight" else {}
        return LeRobotRecorder.create("bench/rollout", plan.fps, features=plan.features(),
                                      root=root, robot_type="bench", **preroll)  # fmt: skip
    from lerobot.datasets import LeRobotDataset  # LeRobot 0.6: the rollout's own writer

    return LeRobotDataset.create("bench/rollout", plan.fps, features=plan.features(), root=root,
                                 robot_type="bench", use_videos=True, streaming_encoding=True,
                                 image_writer_processes=0,
                                 image_writer_threads=4 * plan.cameras)  # fmt: skip


def one_run(writer: str, plan: Plan, pool: Path) -> dict:
    """One run in this process: the loop, then frames counted from the decoded videos."""
    frames = Frames(plan, pool)
    with tempfile.TemporaryDirectory(prefix="shmpipe-bench-rollout-") as tmp:
        root = Path(tmp) / "dataset"
        try:
            dataset = open_writer(writer, plan, root)
        except ImportError as error:
            return {"skipped": f"{writer} not importable here: {error}"}
        except ValueError as error:  # a feature the writer refuses (ConfigError is one)
            return {"skipped": f"{writer} refuses {plan.strategy}: {error}"}
        try:
            trace = run(plan, dataset, frames)
        finally:
            dataset.finalize()
        in_place = frames_in_place(root, plan.names)
    period_ms = 1e3 / plan.fps
    saves = [ms for what, ms in trace.blocked if what == "save"]
    flushes = [ms for what, ms in trace.blocked if what == "flush"]
    return {
        "save_max_ms": max(saves, default=0.0), "save_ms": saves,
        "flush_ms": max(flushes, default=0.0),
        "late_ticks": sum(x > period_ms for x in trace.lateness_ms),
        "gaps": sum(x > 2 * period_ms for x in trace.lateness_ms),
        "ticks": len(trace.lateness_ms), "added": trace.added, "in_place": in_place,
        "lost": trace.added - in_place, "ring_mb": trace.ring_mb,
    }  # fmt: skip


def in_fresh_process(python: str, writer: str, plan: Plan, pool: Path, busy: int,
                     no_sys_nice: bool = False) -> dict:  # fmt: skip
    loads = [subprocess.Popen([python, "-c", BUSY]) for _ in range(busy)]
    prefix = ["setpriv", "--bounding-set=-sys_nice"] if no_sys_nice else []
    try:
        done = subprocess.run(
            [*prefix, python, "-m", "bench.rollout", "--one", writer,
             "--plan", json.dumps(asdict(plan)), "--pool", str(pool)],
            capture_output=True, text=True, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})  # fmt: skip
    finally:
        for load in loads:
            load.kill()
            load.wait()
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        return {"failed": f"exit {done.returncode}: {done.stderr[-2000:]}"}
    return json.loads(line.split(" ", 1)[1])


MEDIANS = ("save_max_ms", "flush_ms", "late_ticks", "gaps", "lost", "added", "ring_mb")


def median_of(runs: list[dict]) -> dict:
    measured = [r for r in runs if "skipped" not in r and "failed" not in r]
    if not measured:
        return {"note": (runs[0].get("skipped") or runs[0].get("failed", ""))[:160]}
    return {key: statistics.median(r[key] for r in measured) for key in MEDIANS}


def table(results: dict) -> str:
    header = "| strategy | writer | save max ms | flush ms | late | gaps | lost / added | ring MB |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for (strategy, writer), m in results.items():
        if "note" in m:
            lines.append(f"| {strategy} | {writer} | {m['note']} |||||")
            continue
        lines.append(f"| {strategy} | {writer} | {m['save_max_ms']:.0f} | {m['flush_ms']:.0f} | "
                     f"{m['late_ticks']:.0f} | {m['gaps']:.0f} | {m['lost']:.0f} / "
                     f"{m['added']:.0f} | {m['ring_mb']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rollout",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    add_camera_arguments(parser)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--writers", default=",".join(WRITERS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--episode-s", type=float, default=10.0)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--reset-s", type=float, default=2.0)
    parser.add_argument("--ring-s", type=float, default=10.0)
    parser.add_argument("--live-s", type=float, default=5.0)
    parser.add_argument("--busy", type=int, default=0, help="busy loops beside each run")
    parser.add_argument("--no-sys-nice", action="store_true", help="runs without CAP_SYS_NICE")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", choices=WRITERS, help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--pool", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a child: one run
        print("RESULT " + json.dumps(one_run(args.one, Plan(**json.loads(args.plan)), args.pool)))
        return
    results, raw = {}, {}
    with tempfile.TemporaryDirectory(prefix="shmpipe-bench-rollout-pool-") as tmp:
        pool = Path(tmp) / "pool.npy"
        save_pool(Plan("", args.cameras, args.height, args.width), pool)
        for strategy in args.strategies.split(","):
            plan = Plan(strategy, args.cameras, args.height, args.width, args.fps, args.episode_s,
                        args.reset_s, args.episodes, args.ring_s, args.live_s)  # fmt: skip
            for writer in args.writers.split(","):
                one = (args.python, writer, plan, pool, args.busy, args.no_sys_nice)
                runs = [in_fresh_process(*one) for _ in range(args.repeats)]
                raw[f"{strategy}/{writer}"] = runs
                results[(strategy, writer)] = median_of(runs)
                print(f"{strategy} {writer}: {results[(strategy, writer)]}", flush=True)
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                        "runs": raw}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
