"""Rolling capture (Pipeline(preroll_s=...)): what keep() costs the loop and what the pre-roll
holds, on camera-like frames paced at the frame rate.

    python -m bench.rolling --cameras 3 --height 480 --width 640 --fps 30 --preroll 60 \
        [--repeats 3] [--busy 2]

rolls `--roll` seconds (default: the pre-roll + 5 s), calls keep(), records `--live` seconds
more and finishes; `--repeats` runs (medians printed), each beside `--busy` busy loops.
Reported: the tick that called keep() (keep + its add_frame: the loop's blocked time), the
other ticks' add_frame p99, late ticks, the bytes the window held on disk at keep (every
camera's segments) and the kept videos' bytes per minute per camera, the control process's peak
RSS, and frames lost (rows vs decoded frames per camera).
Run it alone: timings beside other work mean little (the bytes do not depend on load).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from bench.frames import CameraFrames, add_camera_arguments, state_action
from bench.measure import peak_rss_mb, summarize_ms
from shmpipe import Pipeline

MB = 1e6
BUSY = "import time\nwhile True: time.time()"


def window_bytes(root: Path) -> int:
    """Bytes of every camera's rolling segments on disk now."""
    return sum(p.stat().st_size for p in (root / "videos").rglob("*.partial.*") if p.is_file())


def decoded_frames(path: str) -> int:
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def run(args: argparse.Namespace, root: Path) -> dict:
    names = [f"observation.images.cam{c}" for c in range(args.cameras)]
    cams = {name: (args.height, args.width, 3) for name in names}
    sources = [CameraFrames(c, args.height, args.width) for c in range(args.cameras)]
    roll = args.roll if args.roll is not None else args.preroll + 5
    period, ticks = 1.0 / args.fps, round((roll + args.live) * args.fps)
    keep_at = round(roll * args.fps)
    features = {"observation.state": (6,), "action": (6,)}
    add_ms, late, keep_tick_ms, held = [], 0, None, 0
    with Pipeline(root, fps=args.fps, cameras=cams, features=features,
                  preroll_s=args.preroll) as pipe:  # fmt: skip
        start = time.perf_counter()
        for t in range(ticks):
            due = start + t * period
            now = time.perf_counter()
            if now > due + period:
                late += 1
            elif now < due:
                time.sleep(due - now)
            frame = {}
            for name, source in zip(names, sources, strict=True):
                frame[name] = source.frame(t, out=pipe.loan(name))  # the driver's capture
            frame["observation.state"], frame["action"] = state_action(t)
            t0 = time.perf_counter()
            if t == keep_at:
                held = window_bytes(root)
                t0 = time.perf_counter()
                pipe.keep()
            pipe.add_frame(frame, task="rolling bench")
            took = (time.perf_counter() - t0) * 1e3
            if t == keep_at:
                keep_tick_ms = took
            else:
                add_ms.append(took)
        t0 = time.perf_counter()
        result = pipe.finish_episode()
        finish_s = time.perf_counter() - t0
    sizes = {name: Path(result.videos[name].path).stat().st_size for name in names}
    minutes = result.num_frames / args.fps / 60
    lost = {name: result.num_frames - decoded_frames(result.videos[name].path) for name in names}
    return {
        "cameras": args.cameras, "size": f"{args.height}x{args.width}", "fps": args.fps,
        "preroll_s": args.preroll, "rolled_s": roll, "live_s": args.live,
        "keep_tick_ms": keep_tick_ms, "add_frame_ms": summarize_ms(add_ms), "ticks_late": late,
        "window_mb_at_keep": held / MB,
        "kept_frames": result.num_frames,
        "mb_per_min_per_camera": {n: s / MB / minutes for n, s in sizes.items()},
        "finish_s": finish_s, "control_peak_rss_mb": peak_rss_mb(), "frames_lost": lost,
    }  # fmt: skip


def beside_busy_loops(args: argparse.Namespace) -> dict:
    loads = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy)]
    try:
        with tempfile.TemporaryDirectory(prefix="shmpipe-rolling-") as tmp:
            return run(args, Path(tmp) / "rec")
    finally:
        for load in loads:
            load.kill()
            load.wait()


def medians(runs: list[dict]) -> dict:
    """The figures of the median run per figure (keep tick, p99, late, bytes, lost)."""
    out = dict(runs[0])
    for key in ("keep_tick_ms", "ticks_late", "window_mb_at_keep", "finish_s"):
        out[key] = statistics.median(r[key] for r in runs)
    out["add_frame_ms"] = {"p99": statistics.median(r["add_frame_ms"]["p99"] for r in runs)}
    out["mb_per_min_per_camera"] = {n: statistics.median(r["mb_per_min_per_camera"][n]
                                                         for r in runs)
                                    for n in runs[0]["mb_per_min_per_camera"]}  # fmt: skip
    out["frames_lost"] = {n: max(r["frames_lost"][n] for r in runs) for n in out["frames_lost"]}
    out["runs"] = runs
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_camera_arguments(parser)
    parser.add_argument("--preroll", type=float, default=60.0, help="seconds kept before keep()")
    parser.add_argument("--roll", type=float, default=None, help="seconds rolled before keep()")
    parser.add_argument("--live", type=float, default=3.0, help="seconds recorded after keep()")
    parser.add_argument("--repeats", type=int, default=1, help="runs; medians are printed")
    parser.add_argument("--busy", type=int, default=0, help="busy loops beside each run")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    figures = medians([beside_busy_loops(args) for _ in range(max(1, args.repeats))])
    per_camera = max(figures["mb_per_min_per_camera"].values())
    print(f"rolling {args.cameras} x {figures['size']} @ {args.fps} Hz, {args.busy} busy loops, "
          f"medians of {max(1, args.repeats)}: pre-roll "
          f"{args.preroll:g} s: keep tick {figures['keep_tick_ms']:.2f} ms (add_frame p99 "
          f"{figures['add_frame_ms']['p99']:.2f} ms), {figures['ticks_late']} late ticks, window "
          f"{figures['window_mb_at_keep']:.1f} MB on disk at keep, {per_camera:.1f} MB/min per "
          f"camera, frames lost {sum(figures['frames_lost'].values())}, finish "
          f"{figures['finish_s']:.2f} s")  # fmt: skip
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
