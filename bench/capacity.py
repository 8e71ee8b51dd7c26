"""How many camera streams at 30 fps this machine records with no backlog growth, per system.

    python -m bench.capacity --out bench/out/capacity     # 480x640 and 720x1280, 3 repeats
    python -m bench.capacity --sizes 480x640 --repeats 1 --seconds 4 --out /tmp/cap   # quick

Each system (shmpipe process and thread backends, the raw PyAV encoder, LeRobot 0.4.4's
streaming encoder if its Python is given and imports it) records N camera-like streams paced at
--fps for --seconds, each run in a fresh process, the systems interleaved run by run. Each
system's ceiling is searched for, not capped: N doubles (1, 2, 4, 8, ...) until most of its runs'
backlog grew, then N is bisected between the most kept up and the fewest that grew
(bench.capacity_search). --non-root runs every child under `setpriv --bounding-set=-sys_nice`
(as a user without CAP_SYS_NICE: SVT-AV1 cannot make its threads real-time). Writes
DIR/capacity.json (every run) and DIR/capacity.md (the table: medians and run-to-run spread).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import capacity_report, capacity_search

SYSTEMS = ("process", "thread", "raw", "lerobot")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_LEROBOT_PYTHON = "/work/venv-lerobot/bin/python"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.capacity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"subset of {SYSTEMS}")
    parser.add_argument("--sizes", default="480x640,720x1280", help="HxW,HxW,...")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=8.0, help="paced seconds per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per (size, system, N)")
    parser.add_argument("--max-streams", type=int, default=64, help="a safety stop, not a cap")
    parser.add_argument(
        "--non-root",
        action="store_true",
        help="children without CAP_SYS_NICE (setpriv --bounding-set=-sys_nice)",
    )
    parser.add_argument(
        "--clip-frames",
        type=int,
        default=48,
        help="distinct frames per stream, played forwards and back",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lerobot-python",
        default=os.environ.get("LEROBOT_PYTHON", DEFAULT_LEROBOT_PYTHON),
        help="a Python with lerobot 0.4.4",
    )
    parser.add_argument(
        "--svtav1-params",
        default="",
        help="added to LeRobot's defaults for shmpipe and raw (e.g. lookahead=0)",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--run-one", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--streams", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.systems = [s for s in args.systems.split(",") if s]
    if set(args.systems) - set(SYSTEMS):
        parser.error(f"--systems: choose from {SYSTEMS}")
    args.sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",") if s]
    return args


def clip_paths(out: Path, size: tuple[int, int], streams: int, args) -> list[Path]:
    """Each stream's clip as .npy, made once per size (every system reads the same frames)."""
    from bench.frames import CameraFrames

    folder = out / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for cam in range(streams):
        path = folder / f"{size[0]}x{size[1]}_cam{cam}_seed{args.seed}_n{args.clip_frames}.npy"
        if not path.exists():
            source = CameraFrames(cam, *size, seed=args.seed)
            frames = np.stack([source.frame(t) for t in range(args.clip_frames)])
            np.save(path.with_suffix(".tmp.npy"), frames)
            path.with_suffix(".tmp.npy").rename(path)
        paths.append(path)
    return paths


def run_one_here(args) -> None:
    """The --run-one child: load the clips, run one system, write its trace as JSON."""
    from bench.capacity_streams import SYSTEMS as RUNNERS

    size = args.sizes[0]
    clips = [np.load(p) for p in clip_paths(args.out, size, args.streams, args)]
    ticks = max(2, round(args.seconds * args.fps))
    trace = RUNNERS[args.run_one](clips, args.fps, ticks, args.svtav1_params)
    args.result.write_text(json.dumps(trace.__dict__))


def run_one(system: str, size: tuple[int, int], streams: int, args) -> dict:
    """One run in a fresh process (LeRobot's in its own Python); its trace, or an error."""
    python = args.lerobot_python if system == "lerobot" else sys.executable
    result = args.out / "run.json"
    result.unlink(missing_ok=True)
    cmd = [python, "-m", "bench.capacity", "--run-one", system, "--streams", str(streams),
           "--sizes", f"{size[0]}x{size[1]}", "--fps", str(args.fps), "--seconds",
           str(args.seconds), "--clip-frames", str(args.clip_frames), "--seed", str(args.seed),
           f"--svtav1-params={args.svtav1_params}", "--out", str(args.out),
           "--result", str(result)]  # fmt: skip
    if args.non_root:
        cmd = ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice", "--", *cmd]
    env = dict(os.environ, SVT_LOG="1", PYTHONPATH=str(REPO))
    with open(args.out / f"{system}.log", "a") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=120 + 4 * args.seconds)  # fmt: skip
    if proc.returncode != 0 or not result.exists():
        return {"error": f"exit status {proc.returncode} (see {args.out / system}.log)"}
    return json.loads(result.read_text())


def lerobot_importable(python: str) -> str | None:
    """None if `python` imports LeRobot's StreamingVideoEncoder, else why not."""
    probe = "import lerobot.datasets.video_utils as v; v.StreamingVideoEncoder"
    try:
        proc = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python}: {exc}"
    return None if proc.returncode == 0 else f"{python}: {proc.stderr.strip().splitlines()[-1]}"


def measure_size(size: tuple[int, int], systems: list[str], args, runs: list) -> dict:
    """Search each system's ceiling (capacity_search); its capacity figures."""
    searches = {s: capacity_search.CeilingSearch(args.max_streams) for s in systems}
    by_streams: dict[str, dict[int, dict]] = {s: {} for s in systems}
    while pending := {s: n for s, search in searches.items() if (n := search.next()) is not None}:
        clip_paths(args.out, size, max(pending.values()), args)
        verdicts = {s: [] for s in pending}
        for repeat in range(args.repeats):
            for system, streams in pending.items():
                trace = run_one(system, size, streams, args)
                record = {"size": list(size), "system": system, "streams": streams,
                          "repeat": repeat, "loadavg": os.getloadavg()[0]}  # fmt: skip
                if "error" in trace:
                    runs.append(record | trace)
                    continue
                verdict = capacity_report.judge(trace, streams, args.fps)
                runs.append(record | {"trace": trace, "verdict": verdict})
                verdicts[system].append(verdict)
                print(f"[capacity] {size[0]}x{size[1]} {system} N={streams} #{repeat}: "
                      f"carried {verdict['streams_carried']:.2f}, growth "
                      f"{verdict['growth_fps']:+.1f} frames/s", flush=True)  # fmt: skip
        for system, streams in pending.items():
            if not verdicts[system]:
                searches[system].fail()
                continue
            by_streams[system][streams] = capacity_report.verdict(verdicts[system])
            searches[system].record(streams, by_streams[system][streams]["grows"])
    summary = {s: capacity_report.capacity(v) if v else {"error": "no run finished"}
               for s, v in by_streams.items()}  # fmt: skip
    capacity_report.add_common_cpu(summary, by_streams)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.run_one:
        run_one_here(args)
        return 0
    systems, notes = list(args.systems), {}
    if "lerobot" in systems and (why := lerobot_importable(args.lerobot_python)):
        systems.remove("lerobot")
        notes["lerobot"] = f"skipped: {why}"
    runs, summary, t0 = [], {}, time.perf_counter()
    load_before = os.getloadavg()
    for size in args.sizes:
        summary[f"{size[0]}x{size[1]}"] = measure_size(size, systems, args, runs)
    during = statistics.median([r["loadavg"] for r in runs] or [0])
    meta = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "cores": len(os.sched_getaffinity(0)), "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(), "wall_s": time.perf_counter() - t0,
            "median_loadavg_during": during}  # fmt: skip
    report = {"meta": meta, "notes": notes, "summary": summary, "runs": runs}
    (args.out / "capacity.json").write_text(json.dumps(report, indent=1))
    table = capacity_report.markdown(summary, args.fps)
    table += "".join(f"\n{name}: {note}" for name, note in notes.items())
    (args.out / "capacity.md").write_text(table)
    print(table)
    print(
        f"[capacity] {meta['wall_s']:.0f} s; load average {load_before[0]:.2f} before, "
        f"median {meta['median_loadavg_during']:.2f} during; wrote {args.out}/capacity.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
