"""The control loop's blocked time at a finish with the encoders behind, wait=True against
wait=False, and its gaps right after start() (issue 27).

    python -m bench.background_finish [--cameras 3 --height 480 --width 640 --fps 30]
        [--seconds 10] [--runs 1] [--out results.json]

For each mode, a fresh Pipeline on camera-like frames (bench.frames) paced at --fps: start(),
an episode of --seconds, finish_episode(wait=...), a second episode of --seconds (the encoders
still busy with the first), finish_episode(wait=...), close(). Reported per mode: start() and
the first add_frame, the gaps over 2 periods between ticks in the first 3 s after start(), the
blocked time of each finish call and of close(), late ticks of the second episode, and the
episodes `shmpipe verify` accepts with their decoded frame counts. 3 cameras of 480x640 at 30 Hz
are more than 2 cores encode in real time: the encoders fall behind, and a finish with wait=True
waits for them in the loop. Needs the machine to itself for figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.frames import add_camera_arguments, episode_frames, state_action
from shmpipe import Pipeline
from shmpipe.dataset import layout

CYCLE = 60  # distinct frames per camera, replayed (memory: 3 x 60 x 0.9 MB at 480x640)
AFTER_START_S = 3.0


def run_mode(args: argparse.Namespace, wait: bool, root: Path, frames: list) -> dict:
    names = [f"observation.images.cam{c}" for c in range(args.cameras)]
    shape = (args.height, args.width, 3)
    pipe = Pipeline(root, args.fps, dict.fromkeys(names, shape),
                    features={"observation.state": (6,), "action": (6,)})  # fmt: skip
    period, ticks = 1.0 / args.fps, int(args.seconds * args.fps)
    out: dict = {"mode": "wait=True" if wait else "wait=False"}
    t0 = time.perf_counter()
    pipe.start()
    out["start_s"] = time.perf_counter() - t0
    starts, late, blocked, handles = [], [], [], []
    clock, begin = time.perf_counter, time.perf_counter()
    for episode in range(2):
        first = episode * ticks
        for t in range(first, first + ticks):
            scheduled = begin + t * period
            if scheduled > clock():
                time.sleep(scheduled - clock())
            state, action = state_action(t)
            frame = {n: frames[c][t % CYCLE] for c, n in enumerate(names)}
            frame.update({"observation.state": state, "action": action})
            starts.append(clock())
            late.append(clock() - scheduled)
            pipe.add_frame(frame, task="bench")
            if t == 0:
                out["first_add_frame_s"] = clock() - starts[0]
        t1 = clock()
        handles.append(pipe.finish_episode(wait=wait))
        blocked.append(clock() - t1)
    t1 = clock()
    pipe.close()
    out["close_s"] = clock() - t1
    gaps = np.diff(starts)
    early = np.array(starts[1:]) - starts[0] < AFTER_START_S
    out["gaps_after_start"] = [round(g, 3) for g in gaps[early] if g > 2 * period]
    out["finish_blocked_s"] = [round(b, 3) for b in blocked]
    out["late_ticks_episode_2"] = int(sum(1 for x in late[ticks:] if x > 2 * period))
    results = [h if wait else h.result() for h in handles]
    out["frames"] = [r.num_frames for r in results]
    out["verified"] = verified(root, names, out["frames"])
    return out


def verified(root: Path, names: list[str], frames: list[int]) -> bool:
    """`shmpipe verify` accepts the dataset, and every video decodes to its episode's frames."""
    import av

    from shmpipe.tools.verify import verify_dataset

    if not verify_dataset(root).ok:
        return False
    for episode, n in enumerate(frames):
        for name in names:
            with av.open(str(layout.video_path(root, name, episode))) as container:
                if sum(1 for _ in container.decode(video=0)) != n:
                    return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.background_finish", description=__doc__)
    add_camera_arguments(parser)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    frames = episode_frames(args.cameras, CYCLE, args.height, args.width)
    rows = []
    for _ in range(args.runs):
        for wait in (True, False):
            with tempfile.TemporaryDirectory(prefix="shmpipe-bench-") as tmp:
                rows.append(run_mode(args, wait, Path(tmp) / "ds", frames))
                print(json.dumps(rows[-1]), flush=True)
    for mode in ("wait=True", "wait=False"):
        mine = [r for r in rows if r["mode"] == mode]
        worst = [max(r["finish_blocked_s"]) for r in mine]
        gaps = [len(r["gaps_after_start"]) for r in mine]
        print(f"{mode}: finish blocked, worst of each run (median) "
              f"{statistics.median(worst):.3f} s; gaps > 2 periods after start() (median) "
              f"{statistics.median(gaps)}; "
              f"verified {all(r['verified'] for r in mine)}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
