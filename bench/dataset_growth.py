"""Do start() and saving cost the same at episode 10,000 as at episode 1? (issue 17)

`python -m bench.dataset_growth --points 1,1000,10000 --out DIR`: one 96x128 camera,
`observation.state` and `action` of 14 dims, 300 frames per episode, process backend.

How the dataset is built quickly: the first episode is recorded through the real Pipeline;
the bulk up to each point is committed directly with DatasetWriter (the same code that
finish_episode calls), its videos hard links to episode 0's (same length, so `verify` passes),
random rows, fsync switched off for the bulk only. At each point a fresh process starts a
Pipeline on the root (start() timed), records `--repeat` episodes through it (finish_episode's
steps, medians) and reports its RSS; this runs twice and the faster start() is kept. Then
`verify` runs in its own process (time, episodes/s, peak RSS). Writes DIR/growth.json,
DIR/growth.md (the table) and DIR/growth.png.
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

from bench.measure import peak_rss_mb, rss_now_mb

CAMERA = "observation.images.front"
SHAPE = (96, 128, 3)
FEATURES = {"observation.state": (14,), "action": (14,)}
FPS = 30
NON_VIDEO = ("data", "stats", "meta")


def _frames(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    return [rng.integers(0, 256, SHAPE, dtype=np.uint8) for _ in range(count)]


def measure(root: Path, frames: int, repeat: int) -> dict:
    """start() on `root`, `repeat` episodes recorded through the Pipeline, RSS after."""
    from shmpipe import Pipeline

    rng = np.random.default_rng(len(os.listdir(root)) if root.exists() else 0)
    images = _frames(rng, 8)
    info = root / "meta/info.json"
    episodes_before = json.loads(info.read_text())["total_episodes"] if info.exists() else 0
    rss_before = rss_now_mb()
    pipe = Pipeline(root, fps=FPS, cameras={CAMERA: SHAPE}, features=FEATURES)
    t0 = time.perf_counter()
    pipe.start()
    start_s = time.perf_counter() - t0
    timings = []
    try:
        for _ in range(repeat):
            for i in range(frames):
                state = rng.standard_normal(14).astype(np.float32)
                pipe.add_frame({CAMERA: images[i % 8], "observation.state": state,
                                "action": -state}, task="pick")  # fmt: skip
            timings.append(pipe.finish_episode().timings)
        rss = rss_now_mb()
    finally:
        pipe.close()
    finish = {key: float(np.median([t[key] for t in timings])) for key in timings[0]}
    return {"start_s": start_s, "finish": finish, "rss_mb": rss, "rss_before_start_mb": rss_before,
            "peak_rss_mb": peak_rss_mb(), "episodes_before": episodes_before}  # fmt: skip


def bulk(root: Path, until: int, frames: int) -> dict:
    """Commit episodes with DatasetWriter until `root` holds `until` (fsync off: a fast build)."""
    from shmpipe.dataset import layout
    from shmpipe.dataset.rows import EpisodeRows
    from shmpipe.dataset.writer import DatasetWriter

    os.fsync = lambda fd: None  # this process only: building, not measuring
    info = json.loads((root / layout.INFO_PATH).read_text())
    video = info["shmpipe"]["video_encoder"]
    started = time.perf_counter()
    writer = DatasetWriter.open(root, FPS, {CAMERA: SHAPE}, FEATURES, video)
    with writer, np.load(layout.histograms_path(root, 0)) as saved:
        histograms = {CAMERA: saved[CAMERA]}
        template = layout.video_path(root, CAMERA, 0)
        rng = np.random.default_rng(writer.next_episode_index)
        task = writer.task_index("pick")
        rows = EpisodeRows(FEATURES, frames)
        first = writer.next_episode_index
        for episode in range(first, until):
            rows.clear()
            state = rng.standard_normal((frames, 14)).astype(np.float32) + episode / until
            for i in range(frames):
                rows.append({"observation.state": state[i], "action": -state[i]}, task)
            video_path = layout.video_path(root, CAMERA, episode)
            video_path.parent.mkdir(parents=True, exist_ok=True)
            os.link(template, video_path)
            writer.commit_episode(episode, rows, histograms)
            if episode % 1000 == 999:
                print(f"  bulk: {episode + 1} episodes", file=sys.stderr, flush=True)
    return {"episodes": until - first, "seconds": time.perf_counter() - started}


def verify(root: Path) -> dict:
    from shmpipe.tools.verify.verifier import verify_dataset

    report = verify_dataset(root)
    return {"seconds": report.seconds, "ok": report.ok, "problems": len(report.problems),
            "episodes": report.episodes, "frames": report.frames,
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def _step(*args: str) -> dict:
    """Run one step in a fresh process: its RSS is its own, not the build's."""
    command = [sys.executable, "-m", "bench.dataset_growth", "--step", *args]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(points: list[int], frames: int, repeat: int, out: Path) -> list[dict]:
    root = out / "dataset"
    shutil.rmtree(root, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    created = _step("measure", str(root), str(frames), "1")
    print(f"created: start() {created['start_s']:.3f} s", file=sys.stderr)
    rows = []
    for point in points:
        held = json.loads((root / "meta/info.json").read_text())["total_episodes"]
        if held < point:
            _step("bulk", str(root), str(frames), str(point))
        runs = [_step("measure", str(root), str(frames), str(repeat)) for _ in range(2)]
        best = min(runs, key=lambda r: r["start_s"])
        best["finish"] = {k: min(r["finish"][k] for r in runs) for k in best["finish"]}
        best["rss_mb"] = max(r["rss_mb"] for r in runs)
        checked = _step("verify", str(root), str(frames))
        rows.append({"episodes": point, "measure": best, "runs": runs, "verify": checked})
        print(_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _row(row: dict) -> str:
    m, v = row["measure"], row["verify"]
    f = {k: 1000 * s for k, s in m["finish"].items()}
    non_video = sum(f[k] for k in NON_VIDEO)
    rate = v["episodes"] / v["seconds"] if v["seconds"] else 0.0
    return (f"| {row['episodes']} | {m['start_s']:.3f} | {f['total']:.1f} | {f['data']:.1f} | "
            f"{f['stats']:.1f} | {f['meta']:.1f} | {non_video:.1f} | {m['rss_mb']:.0f} | "
            f"{v['seconds']:.1f} ({rate:.0f} ep/s, {'ok' if v['ok'] else 'FAILED'}) | "
            f"{v['peak_rss_mb']:.0f} |")  # fmt: skip


def table(rows: list[dict]) -> str:
    lines = [
        "| episodes in root at start() | start() s | finish_episode ms | data ms | stats ms | "
        "meta ms | non-video ms | control RSS MB | verify s | verify peak RSS MB |",
        "|---" * 10 + "|",
        *(_row(r) for r in rows),
    ]
    first, last = rows[0]["measure"], rows[-1]["measure"]
    nv = [sum(m["finish"][k] for k in NON_VIDEO) for m in (first, last)]
    lines.append(
        f"\nAt {rows[-1]['episodes']} vs {rows[0]['episodes']} episodes: start() "
        f"x{last['start_s'] / first['start_s']:.2f}, non-video finish steps x{nv[1] / nv[0]:.2f}, "
        f"control RSS {last['rss_mb'] - first['rss_mb']:+.0f} MB."
    )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["episodes"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    series = [
        ("start() (s)", [r["measure"]["start_s"] for r in rows]),
        ("control RSS (MB)", [r["measure"]["rss_mb"] for r in rows]),
        ("verify (s)", [r["verify"]["seconds"] for r in rows]),
    ]
    ax = axes[0][1]
    for key in (*NON_VIDEO, "total"):
        ax.plot(x, [1000 * r["measure"]["finish"][key] for r in rows], "o-", label=key)
    ax.set(title="finish_episode steps (ms)", xscale="log", xlabel="episodes in root")
    ax.legend()
    for ax, (title, ys) in zip([axes[0][0], axes[1][0], axes[1][1]], series, strict=True):
        ax.plot(x, ys, "o-")
        ax.set(title=title, xscale="log", xlabel="episodes in root", ylim=(0, max(ys) * 1.2))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="1,1000,10000", help="episodes in the root")
    parser.add_argument("--frames", type=int, default=300, help="frames per episode")
    parser.add_argument("--repeat", type=int, default=3, help="episodes recorded per point")
    parser.add_argument("--out", default="bench/out/growth")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)  # internal: one step
    args = parser.parse_args(argv)
    if args.step:
        kind, root, frames, *rest = args.step
        steps = {"measure": lambda: measure(Path(root), int(frames), int(rest[0])),
                 "bulk": lambda: bulk(Path(root), int(rest[0]), int(frames)),
                 "verify": lambda: verify(Path(root))}  # fmt: skip
        print(json.dumps(steps[kind]()))
        return
    out = Path(args.out)
    rows = run([int(p) for p in args.points.split(",")], args.frames, args.repeat, out)
    (out / "growth.json").write_text(json.dumps(rows, indent=1))
    (out / "growth.md").write_text(table(rows))
    plot(rows, out / "growth.png")
    print(table(rows))


if __name__ == "__main__":
    main()
