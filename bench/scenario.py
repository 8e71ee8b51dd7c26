"""Run the benchmark scenario: every variant on the same frames, each in a fresh process.

    python -m bench.scenario --cameras 3 --height 480 --width 640 --fps 30 --seconds 10 --out DIR

writes DIR/results.json (keyed process, thread, loan, before, raw), DIR/results.md and DIR/*.png.
A fresh process per variant keeps peak RSS and CPU seconds its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.frames import add_camera_arguments
from bench.variants import VARIANTS, Scenario


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scenario", description=__doc__)
    add_camera_arguments(parser)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--unpaced", action="store_true", help="add frames as fast as possible")
    parser.add_argument("--seed", type=int, default=0, help="frame content seed")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}"
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--variant-only", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {VARIANTS}")
    return args


def scenario_from(args: argparse.Namespace) -> Scenario:
    return Scenario(
        cameras=args.cameras,
        height=args.height,
        width=args.width,
        fps=args.fps,
        seconds=args.seconds,
        paced=not args.unpaced,
        seed=args.seed,
    )


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    import av

    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "pyav": av.__version__,
        "root": os.geteuid() == 0,
    }


def frames_digest(episode) -> str:
    """A short fingerprint of the frames, so results show every variant saw the same ones."""
    h = hashlib.blake2b(digest_size=8)
    for frames in episode:
        for t in range(0, len(frames), max(1, len(frames) // 10)):
            h.update(frames[t].tobytes())
    return h.hexdigest()


def run_variant_here(name: str, scenario: Scenario, out_dir: Path) -> dict:
    """Generate the frames, then run one variant in this process (untimed generation first)."""
    from bench import measure, variants
    from bench.frames import episode_frames

    background = measure.machine_busy_fraction()  # before we load the machine ourselves
    t0 = time.perf_counter()
    episode = episode_frames(
        scenario.cameras, scenario.num_frames, scenario.height, scenario.width, scenario.seed
    )
    generation_s = time.perf_counter() - t0
    work_dir = out_dir / name
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    if name in ("process", "thread", "loan"):
        result = variants.run_shmpipe(name, scenario, episode, work_dir)
    elif name == "before":
        result = variants.run_before(scenario, episode, work_dir)
    else:
        result = variants.run_raw(scenario, episode, work_dir)
    result["frames_digest"] = frames_digest(episode)
    result["frames_generation_s"] = generation_s
    result["scenario"] = asdict(scenario)
    result["machine"] = machine() | {"busy_before_start": background}
    return result


def run_variant_subprocess(name: str, args: argparse.Namespace) -> dict:
    """`python -m bench.scenario --variant-only name ...`; its output goes to DIR/name.log."""
    out_dir: Path = args.out
    result_path = out_dir / f"{name}.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.scenario", "--variant-only", name, "--out", str(out_dir)]
    cmd += ["--cameras", str(args.cameras), "--height", str(args.height)]
    cmd += ["--width", str(args.width), "--fps", str(args.fps), "--seconds", str(args.seconds)]
    cmd += ["--seed", str(args.seed)] + (["--unpaced"] if args.unpaced else [])
    env = dict(os.environ)
    env.setdefault("SVT_LOG", "2")  # SVT-AV1: warnings and errors only
    timeout = 600 + 20 * args.seconds * args.cameras
    log_path = out_dir / f"{name}.log"
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout
            )
            failure = None if proc.returncode == 0 else f"exit status {proc.returncode}"
        except subprocess.TimeoutExpired:
            failure = f"timed out after {timeout:.0f} s"
    if failure is None and result_path.exists():
        result = json.loads(result_path.read_text())
        result_path.unlink()  # merged into results.json
        return result
    lines = log_path.read_text().strip().splitlines()
    raised = [ln for ln in lines if re.match(r"[A-Za-z_.]*(Error|Exception|Exit)\b", ln)]
    shown = list(dict.fromkeys(raised))[:3] or lines[-3:]
    return {
        "variant": name,
        "error": f"{failure or 'no result'}: {' | '.join(shown)} (see {log_path})",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenario = scenario_from(args)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.variant_only:
        result = run_variant_here(args.variant_only, scenario, args.out)
        (args.out / f"{args.variant_only}.json").write_text(json.dumps(result))
        return 0

    from bench import plots, report

    results = {}
    for name in args.variants:
        print(f"[bench] {name} ...", flush=True)
        results[name] = run_variant_subprocess(name, args)
        print(f"[bench] {name}: {report.one_line(results[name])}", flush=True)
    report.add_ratios(results, scenario)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "results.md").write_text(report.markdown(results, scenario))
    written = plots.write_plots(results, scenario, args.out)
    print((args.out / "results.md").read_text())
    print(f"[bench] wrote {args.out / 'results.json'}, results.md, {len(written)} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
