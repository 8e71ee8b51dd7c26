"""`shmpipe demo`: record a synthetic multi-camera episode to disk and say how it went.

It runs the control loop as a robot would (paced at the camera rate) on the default backend, so
the numbers it prints are the ones a user would see: add_frame latency and finish_episode time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from shmpipe import Pipeline
from shmpipe.tools.arguments import Parser, count, positive, run_command, writable_folder


def synthetic_frame(t: int, height: int, width: int, camera: int) -> np.ndarray:
    """A moving colour gradient with a little noise, different per camera."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    phase = t / 30.0 + camera
    rgb = [
        0.5 + 0.4 * np.sin(2 * np.pi * (x + 0.1 * phase)) + 0 * y,
        0.5 + 0.4 * np.sin(2 * np.pi * (y + 0.07 * phase)) + 0 * x,
        0.5 + 0.4 * np.sin(2 * np.pi * (x + y + 0.05 * phase)),
    ]
    return (np.stack(rgb, axis=-1) * 255).astype(np.uint8)


def add_demo(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help=SUMMARY, description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_arguments(parser)
    parser.set_defaults(run=run)


SUMMARY = "record a synthetic multi-camera episode (paced, default backend) and report timings"
DESCRIPTION = """\
Record one episode of synthetic camera frames and numeric features into a LeRobot v3.0
dataset, paced like a robot's control loop, on the default backend (worker processes).

It prints where the videos and the data went, how long finish_episode took (video flush,
data, stats, meta) and add_frame's latency (p50, p99, max). Run it again with the same
--root and cameras and the new episode is appended (it says so); other cameras or sizes
need another --root. Check the result with: shmpipe verify recordings/demo
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    arg = parser.add_argument
    arg("--root", type=writable_folder, default="recordings/demo", metavar="DIR",
        help="the dataset's folder; one holding the same cameras gets the episode appended "
        "(default: recordings/demo)")  # fmt: skip
    arg("--cameras", type=positive(int), default=2, metavar="N",
        help="how many cameras, named cam0, cam1, ... (default: 2)")  # fmt: skip
    arg("--height", type=positive(int), default=480, metavar="PIXELS",
        help="frame height (default: 480)")  # fmt: skip
    arg("--width", type=positive(int), default=640, metavar="PIXELS",
        help="frame width (default: 640)")  # fmt: skip
    arg("--fps", type=positive(int), default=30, metavar="N",
        help="frames per second; the loop sleeps to keep this pace (default: 30)")  # fmt: skip
    arg("--seconds", type=positive(float), default=5.0, metavar="SECONDS",
        help="length of the episode (default: 5)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """`shmpipe-demo` (the same as `shmpipe demo`)."""
    parser = Parser(prog="shmpipe-demo", description=DESCRIPTION,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.run = run
    return run_command(args, "shmpipe-demo")


def run(args: argparse.Namespace) -> int:
    cameras = {
        f"observation.images.cam{i}": (args.height, args.width, 3) for i in range(args.cameras)
    }
    features = {"observation.state": (6,), "action": (6,)}
    n = int(args.seconds * args.fps)
    # frames are made before the loop, so the loop measures shmpipe, not the synthesis
    images = [
        [synthetic_frame(t, args.height, args.width, c) for c in range(args.cameras)]
        for t in range(min(n, 2 * args.fps))
    ]
    latencies = []
    with Pipeline(args.root, fps=args.fps, cameras=cameras, features=features) as pipe:
        print(
            f"recording {count(n, 'frame')} of {count(args.cameras, 'camera')} "
            f"{args.height}x{args.width} at {args.fps} fps, backend={pipe.backend}, "
            f"ring={pipe.ring_slots} slots"
        )
        if pipe.next_episode_index:
            held = pipe.next_episode_index
            print(f"{args.root} already holds {count(held, 'episode')} of these cameras: this one "
                  f"is appended as episode {held}")  # fmt: skip
        period = 1.0 / args.fps
        next_tick = time.perf_counter()
        for t in range(n):
            frame = {name: images[t % len(images)][c] for c, name in enumerate(cameras)}
            state = np.sin(np.arange(6, dtype=np.float32) + t / 10)
            frame.update({"observation.state": state, "action": np.cos(state)})
            start = time.perf_counter()
            pipe.add_frame(frame, task="synthetic demo")
            latencies.append(time.perf_counter() - start)
            next_tick += period
            time.sleep(max(0.0, next_tick - time.perf_counter()))
        result = pipe.finish_episode()
    ms = np.array(latencies) * 1000
    print(f"episode {result.episode_index}: {result.num_frames} frames")
    for name, (path, _, _) in result.videos.items():
        print(f"  {name}: {path}")
    print(f"  data: {result.data}")
    print(
        f"finish_episode: {result.timings['total']:.3f} s "
        f"(video flush {result.timings['video_flush']:.3f} s, "
        f"data {result.timings['data']:.3f} s, stats {result.timings['stats']:.3f} s, "
        f"meta {result.timings['meta']:.3f} s)"
    )
    print(
        f"add_frame: p50 {np.percentile(ms, 50):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms, "
        f"max {ms.max():.3f} ms; frames through the backlog: {sum(result.overflow_count.values())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
