"""What a loaned add_frame costs, part by part, where the control loop really calls it.

    python -m bench.add_frame_parts --seconds 10 --rounds 2 --out bench/out/parts

One Pipeline (process backend, default settings), 3 cameras 480x640 paced at 30 Hz with
camera-like frames written into loaned slots, as bench.scenario's `loan` variant. Episodes take
turns, each timing one callable in place of add_frame on every tick:
- `add_frame`: the real call;
- `signals deferred`: entering and leaving the block that holds signal handlers back
  (shmpipe.recorder.guards.SignalsDeferred), nothing inside;
- `ring publishes`: publishing the loaned slot of every camera, nothing else;
- `empty call`: a method that returns at once (the floor of the timing itself).
The parts run on the same cold caches as add_frame (encoders on both cores between ticks), so
they show how much of add_frame's time no slimming of its own code can remove. Episodes of the
parts are cancelled; add_frame's are finished. Writes DIR/parts.json and DIR/parts.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.frames import CameraFrames, add_camera_arguments

TASK = "pick the cube"


def _parts(pipe) -> dict:
    feeds = pipe._intake.feeds  # the bench reaches into the pipeline to time its pieces alone

    def signals_deferred(frame: dict) -> None:
        with pipe._intake.signals_deferred:
            pass

    def ring_publishes(frame: dict) -> None:
        take = pipe._current
        index = take.rows.num_frames
        for feed in feeds:
            feed.ring.publish(take.number, index)
        take.rows.num_frames = index + 1

    return {
        "add_frame": lambda frame: pipe.add_frame(frame, TASK),
        "signals deferred": signals_deferred,
        "ring publishes": ring_publishes,
        "empty call": lambda frame: None,
    }


def run(args: argparse.Namespace) -> dict[str, list[float]]:
    from shmpipe import Pipeline

    names = [f"cam{i}" for i in range(args.cameras)]
    shape = (args.height, args.width, 3)
    cameras = [CameraFrames(i, args.height, args.width) for i in range(args.cameras)]
    state = np.zeros(6, np.float32)
    ticks = int(args.seconds * args.fps)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as root, Pipeline(
        Path(root) / "dataset", args.fps, dict.fromkeys(names, shape), {"state": (6,)}
    ) as pipe:
        parts = _parts(pipe)
        for _ in range(args.rounds):
            for part, call in parts.items():
                # the first frame opens the episode through add_frame; the part times the rest
                pipe.add_frame({"state": state, **{n: np.zeros(shape, np.uint8) for n in names}},
                               TASK)  # fmt: skip
                out = times.setdefault(part, [])
                start = time.perf_counter() + 0.1
                for t in range(ticks):
                    delay = start + t / args.fps - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    frame = {"state": state}
                    for name, camera in zip(names, cameras, strict=True):
                        frame[name] = camera.frame(t, out=pipe.loan(name))
                    t0 = time.perf_counter_ns()
                    call(frame)
                    out.append((time.perf_counter_ns() - t0) / 1e3)
                if part == "add_frame":
                    pipe.finish_episode()
                else:
                    for feed in pipe._intake.feeds:
                        feed._end_loan()
                    pipe.cancel_episode()
    return times


def table(times: dict[str, list[float]]) -> str:
    lines = ["| part (loaned frames) | p50 us | p90 us | p99 us | max us |"]
    lines.append("|---|---|---|---|---|")
    for part, values in times.items():
        a = np.asarray(values)
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        lines.append(f"| {part} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {a.max():.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.add_frame_parts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_camera_arguments(parser)
    parser.add_argument("--seconds", type=float, default=10.0, help="paced seconds per episode")
    parser.add_argument("--rounds", type=int, default=2, help="episodes per part")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    times = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parts.json").write_text(json.dumps(times))
    text = table(times)
    (args.out / "parts.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
