"""Memory and time of `merge` and `verify` over a fleet of datasets (issue 28), in one process
and as Ray tasks on a local Ray.

`python -m bench.merge_fleet --datasets 100 --episodes 50 --out DIR [--ray-workers 2]`:
one 96x128 camera, `observation.state` and `action` of 14 dims, --frames per episode, fps 30.
One dataset is recorded through the real Pipeline; the fleet is that dataset hard-linked
--datasets times (merge and verify only read them; the writer lock is not linked). Each step
runs in a fresh process: verify of every dataset, then merge of all into one, single-process and
(if Ray is installed) on a local Ray of --ray-workers CPUs; the merged outputs' stats.json are
compared byte for byte. Reports seconds and peak RSS (the driver's, and for Ray the largest
worker's); writes DIR/fleet.json and DIR/fleet.md.
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

from bench.measure import peak_rss_mb

CAMERA = "observation.images.front"
SHAPE = (96, 128, 3)
FEATURES = {"observation.state": (14,), "action": (14,)}


def record(root: Path, episodes: int, frames: int) -> None:
    from shmpipe import Pipeline

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, SHAPE[1], dtype=np.float32)
    with Pipeline(root, fps=30, cameras={CAMERA: SHAPE}, features=FEATURES) as pipe:
        for e in range(episodes):
            for i in range(frames):
                image = np.empty(SHAPE, np.uint8)
                image[...] = ((ramp + 3 * i + 40 * e) % 256)[None, :, None]
                values = {n: rng.normal(e, 1, s).astype(np.float32) for n, s in FEATURES.items()}
                pipe.add_frame({CAMERA: image, **values}, task=f"task {e % 3}")
            pipe.finish_episode()


def fleet(template: Path, folder: Path, count: int) -> list[Path]:
    """`count` hard-linked copies of the template dataset (not its writer lock)."""
    roots = []
    for i in range(count):
        root = folder / f"rig{i:03d}"
        shutil.copytree(template, root, copy_function=os.link,
                        ignore=shutil.ignore_patterns("writer.lock"))  # fmt: skip
        roots.append(root)
    return roots


def _worker_peak_mb() -> float:
    """The largest VmHWM of this machine's Ray worker processes (0 if none)."""
    peak = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::"):
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peak


def step(kind: str, out: Path, folder: Path, workers: int) -> dict:
    """One measured step, in this (fresh) process."""
    from shmpipe.tools.fanout import Fanout, RayFanout
    from shmpipe.tools.merge import merge
    from shmpipe.tools.verify.many import VerifyEach

    roots = sorted(p for p in folder.iterdir() if p.is_dir())
    runner = RayFanout(workers=workers) if workers else Fanout()
    started = time.perf_counter()
    if kind == "verify":
        results = runner.map(VerifyEach(), roots)
        assert all(report is not None and report.ok for report, _ in results)
    else:
        merge(out, roots, runner)
    seconds = time.perf_counter() - started
    worker = _worker_peak_mb() if workers else 0.0
    return {"step": kind, "ray_workers": workers, "seconds": seconds,
            "driver_peak_rss_mb": peak_rss_mb(), "worker_peak_rss_mb": worker}  # fmt: skip


def _run_step(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench.merge_fleet", "--step", *args],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(datasets: int, episodes: int, frames: int, workers: int, out: Path) -> list[dict]:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    record(out / "template", episodes, frames)
    fleet(out / "template", out / "fleet", datasets)
    print(f"built {datasets} datasets x {episodes} episodes in "
          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    try:
        import ray  # noqa: F401

        choices = [0, workers]
    except ImportError:
        choices = [0]
    rows = []
    for ray_workers in choices:
        for kind in ("verify", "merge"):
            merged = out / f"merged-{ray_workers}"
            rows.append(_run_step(kind, str(merged), str(out / "fleet"), str(ray_workers)))
            rows[-1].update(datasets=datasets, episodes=episodes, frames=frames)
            print(json.dumps(rows[-1]), flush=True)
    stats = {(out / f"merged-{w}/meta/stats.json").read_bytes() for w in choices}
    assert len(stats) == 1, "merged stats.json differ between one process and Ray"
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| step | where | datasets x episodes x frames | seconds | driver peak RSS MB | "
             "largest Ray worker peak RSS MB |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        where = f"Ray, {r['ray_workers']} workers" if r["ray_workers"] else "one process"
        lines.append(f"| {r['step']} | {where} | {r['datasets']} x {r['episodes']} x "
                     f"{r['frames']} | {r['seconds']:.1f} | {r['driver_peak_rss_mb']:.0f} | "
                     f"{r['worker_peak_rss_mb']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--ray-workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/out/merge_fleet"))
    parser.add_argument("--step", nargs=4, metavar=("KIND", "OUT", "FLEET", "WORKERS"))
    args = parser.parse_args(argv)
    if args.step:
        kind, out, folder, workers = args.step
        print(json.dumps(step(kind, Path(out), Path(folder), int(workers))))
        return
    rows = run(args.datasets, args.episodes, args.frames, args.ray_workers, args.out)
    (args.out / "fleet.json").write_text(json.dumps(rows, indent=2))
    (args.out / "fleet.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
