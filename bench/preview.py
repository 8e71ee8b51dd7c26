"""The live preview's cost to the control loop, beside LeRobot 0.4.4's display_data.

    python -m bench.preview --seconds 10 --runs 3 --out bench/out/preview

Four variants on the same camera-like frames (3 x 480x640 at 30 Hz by default), each run in a
fresh process, `--runs` times: shmpipe's add_frame with the preview off and on (Pipeline(preview=
PreviewConfig("save")), a Rerun file, as no screen is here), and LeRobot's per-frame
`log_rerun_data(observation, action)` (what its record loop calls with --display_data=true, run
in LeRobot's venv, `--lerobot-python`) off and on, logging to a Rerun file too. Per variant: the
medians over runs of the loop call's p50/p99 (ms), late ticks (woken more than a period late)
and, for shmpipe, the preview worker's CPU seconds. Writes preview.json and preview.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.control_loop import run_loop
from bench.frames import add_camera_arguments

VARIANTS = ("shmpipe-off", "shmpipe-on", "lerobot-off", "lerobot-on")
DISTINCT_FRAMES = 60  # per camera, cycled: the frames file stays ~170 MB at 480x640
STATE_DIM = 6
LEROBOT_PYTHON = "/work/venv-lerobot/bin/python"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.preview", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_camera_arguments(parser)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--lerobot-python", default=LEROBOT_PYTHON)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant-only", choices=VARIANTS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)  # fmt: skip


def _signals(t: int) -> tuple[np.ndarray, np.ndarray]:
    joints = np.arange(STATE_DIM, dtype=np.float32)
    state = np.sin(t / 60 * (1 + 0.1 * joints) + joints).astype(np.float32)
    return state, np.roll(state, 1)


def _loop_figures(trace, fps: int) -> dict:
    period_ms = 1e3 / fps
    calls = np.asarray(trace.add_frame_ms)
    return {"call_p50_ms": float(np.percentile(calls, 50)),
            "call_p99_ms": float(np.percentile(calls, 99)), "call_max_ms": float(calls.max()),
            "late_ticks": int(sum(x > period_ms for x in trace.lateness_ms)),
            "ticks": len(trace.lateness_ms)}  # fmt: skip


def run_shmpipe(args, frames: np.ndarray, preview_on: bool, out: Path) -> dict:
    from bench import measure
    from shmpipe import Pipeline, PreviewConfig

    names = [f"observation.images.cam{c}" for c in range(args.cameras)]
    preview = PreviewConfig("save", path=out / "preview.rrd") if preview_on else None
    pipe = Pipeline(out / "ds", fps=args.fps, cameras={n: frames.shape[2:] for n in names},
                    features={"observation.state": (STATE_DIM,), "action": (STATE_DIM,)},
                    preview=preview)  # fmt: skip
    with pipe:
        while preview_on and not pipe.status().preview.ready:
            time.sleep(0.05)  # its viewer or file open, as a user would see it before starting
        pid = pipe.status().preview.worker_pid if preview_on else None
        cpu0 = measure.cpu_seconds_of(pid) if pid else None

        def make(t: int) -> dict:
            state, action = _signals(t)
            k = t % frames.shape[1]
            return {**{n: frames[c, k] for c, n in enumerate(names)},
                    "observation.state": state, "action": action}  # fmt: skip

        trace = run_loop(lambda f: pipe.add_frame(f, task="t"), make,
                         round(args.seconds * args.fps), args.fps, paced=True)  # fmt: skip
        cpu1 = measure.cpu_seconds_of(pid) if pid else None
        result = pipe.finish_episode()
    figures = _loop_figures(trace, args.fps) | {"frames": result.num_frames}
    if cpu0 is not None and cpu1 is not None:
        figures["preview_cpu_s"] = cpu1 - cpu0
    return figures


def run_lerobot(args, frames: np.ndarray, display: bool, out: Path) -> dict:
    """LeRobot's record loop with --display_data calls log_rerun_data(obs, action) once per
    tick, in the loop; its images are HWC uint8 and joints plain floats."""
    import lerobot
    import rerun as rr
    from lerobot.utils.visualization_utils import log_rerun_data

    rr.init("lerobot_control_loop")
    rr.save(str(out / "lerobot.rrd"))  # LeRobot spawns a viewer; no screen here: a file
    joints = [f"joint{i}.pos" for i in range(STATE_DIM)]

    def make(t: int) -> tuple[dict, dict]:
        state, action = _signals(t)
        k = t % frames.shape[1]
        obs = {f"cam{c}": frames[c, k] for c in range(args.cameras)}
        obs |= {j: float(v) for j, v in zip(joints, state, strict=True)}
        return obs, {j: float(v) for j, v in zip(joints, action, strict=True)}

    def log(step: tuple[dict, dict]) -> None:
        if display:
            log_rerun_data(observation=step[0], action=step[1])

    trace = run_loop(log, make, round(args.seconds * args.fps), args.fps, paced=True)
    rr.disconnect()
    return _loop_figures(trace, args.fps) | {"lerobot": lerobot.__version__,
                                              "rerun": rr.__version__}  # fmt: skip


def run_variant(args) -> dict:
    frames = np.load(args.out / "frames.npy")
    out = args.out / f"{args.variant_only}-{os.getpid()}"
    out.mkdir(parents=True)
    kind, state = args.variant_only.split("-")
    runner = run_shmpipe if kind == "shmpipe" else run_lerobot
    try:
        return runner(args, frames, state == "on", out)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # LeRobot's file takes ~80 MB a second


def _child(args, variant: str) -> dict:
    python = args.lerobot_python if variant.startswith("lerobot") else sys.executable
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    argv = [python, "-m", "bench.preview", "--variant-only", variant, "--out", str(args.out),
            "--seconds", str(args.seconds), "--fps", str(args.fps),
            "--cameras", str(args.cameras)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _medians(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    return {k: float(np.median([r[k] for r in runs if k in r])) for k in keys}


def _table(results: dict) -> str:
    lines = ["| variant | call p50 ms | call p99 ms | late ticks | preview CPU s |",
             "|---|---|---|---|---|"]  # fmt: skip
    for variant, figures in results.items():
        m = figures["median"]
        cpu = f"{m['preview_cpu_s']:.2f}" if "preview_cpu_s" in m else "-"
        lines.append(f"| {variant} | {m['call_p50_ms']:.3f} | {m['call_p99_ms']:.3f} | "
                     f"{m['late_ticks']:g} of {m['ticks']:g} | {cpu} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.variant_only:
        print(json.dumps(run_variant(args)))
        return
    from bench.frames import episode_frames

    args.out.mkdir(parents=True, exist_ok=True)
    episode = episode_frames(args.cameras, DISTINCT_FRAMES, args.height, args.width)
    np.save(args.out / "frames.npy", np.stack(episode))
    variants = args.variants.split(",")
    results: dict = {v: {"runs": []} for v in variants}
    for run in range(args.runs):  # interleaved, so a slow spell of the machine hits all
        for variant in variants:
            results[variant]["runs"].append(_child(args, variant))
            print(f"run {run + 1}/{args.runs} {variant}: {results[variant]['runs'][-1]}",
                  flush=True)  # fmt: skip
    for figures in results.values():
        figures["median"] = _medians(figures["runs"])
    (args.out / "frames.npy").unlink()
    (args.out / "preview.json").write_text(json.dumps(results, indent=1))
    table = _table(results)
    (args.out / "preview.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
