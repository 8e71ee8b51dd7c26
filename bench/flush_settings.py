"""What SVT-AV1's look-ahead and threads cost at the end of an episode, and what they buy.

    python -m bench.flush_settings --out bench/out/flush        # 3 cameras 480x640, 300 frames

Each setting is svtav1-params appended to shmpipe's options for LeRobot's defaults (libsvtav1,
yuv420p, g=2, crf=30, preset 12; shmpipe adds lookahead=0 at g<=2, see shmpipe.video.codecs);
"lerobot" restores SVT-AV1's own look-ahead, as LeRobot's options leave it. All cameras encode
the same camera-like frames at once, one thread each, as shmpipe's encoders share the cores (lp
from the camera count unless the setting sets it). Per setting: encode fps per camera, the
flush at the end (seconds, and frames it gave back), bytes and PSNR (RGB, decoded against the
source) against "lerobot". Settings run --repeats times, interleaved; figures are medians. Then
shmpipe records the cameras paced at --fps with "lerobot" and with its default, to compare
finish_episode with the encoders' own flush. Writes DIR/flush.json and DIR/flush.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.codec import open_video
from bench.frames import add_camera_arguments
from shmpipe.system import priority
from shmpipe.video.codecs import SVT_PARAMS
from shmpipe.video.encoder_config import VideoEncoderConfig
from shmpipe.video.episode_writer import DEMOTE_AGAIN_AT

SVT_OWN = "lookahead=-1"  # SVT-AV1 picks its look-ahead: what LeRobot's options give
SETTINGS = {  # name -> svtav1-params after shmpipe's (which end in lookahead=0 for g=2)
    "lerobot": SVT_OWN,
    "lookahead=0": "",  # shmpipe's default
    "lookahead=8": "lookahead=8",
    "lookahead=16": "lookahead=16",
    "enable-tf=0": f"{SVT_OWN}:enable-tf=0",
    "lookahead=0:enable-tf=0": "enable-tf=0",
    "scd=1": f"{SVT_OWN}:scd=1",
    "lp=2": f"{SVT_OWN}:lp=2",
    "lp=2:lookahead=0": "lp=2",
}
REFERENCE, SHMPIPE_DEFAULT = "lerobot", "lookahead=0"
BYTES_TOLERANCE = 0.05  # adopt a setting only if bytes stay within 5 % of LeRobot's ...
PSNR_TOLERANCE_DB = 0.3  # ... and PSNR within 0.3 dB


def config(params: str) -> VideoEncoderConfig:
    return VideoEncoderConfig(extra_options={SVT_PARAMS: params} if params else {})


def encode_one(frames: np.ndarray, path: Path, params: str, fps: int, cameras: int,
               start: threading.Barrier) -> dict:  # fmt: skip
    """Encode one camera; the loop, the flush and the frames the flush gave back."""
    import av

    container, stream = open_video(path, config(params), *frames.shape[1:3], fps, cameras)
    start.wait()
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        container.mux(stream.encode(av.VideoFrame.from_numpy_buffer(frame, format="rgb24")))
        if i in DEMOTE_AGAIN_AT or i % 150 == 0:  # shmpipe's encoders' priority, not SVT-AV1's
            priority.apply(priority.thread_ids(), priority.DEFAULT_ENCODER_PRIORITY)  # FIFO 99
    t1 = time.perf_counter()
    flushed = stream.encode(None)
    container.mux(flushed)
    container.close()
    t2 = time.perf_counter()
    return {"fps": len(frames) / (t1 - t0), "flush_s": t2 - t1, "held": len(flushed),
            "bytes": path.stat().st_size}  # fmt: skip


def encode_setting(episode: list[np.ndarray], out: Path, params: str, fps: int) -> dict:
    """All cameras at once, one thread each: per-camera mean fps, slowest flush, total bytes."""
    start, results = threading.Barrier(len(episode)), [None] * len(episode)

    def run(c: int) -> None:
        results[c] = encode_one(episode[c], out / f"cam{c}.mp4", params, fps, len(episode), start)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(len(episode))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(r is None for r in results):
        raise RuntimeError(f"an encoder thread failed with {params!r}")
    return {"fps": float(np.mean([r["fps"] for r in results])),
            "flush_s": max(r["flush_s"] for r in results),
            "held": max(r["held"] for r in results),
            "bytes": sum(r["bytes"] for r in results)}  # fmt: skip


def psnr_db(path: Path, frames: np.ndarray) -> float:
    """PSNR of the decoded video against its source frames, over every RGB sample."""
    import av

    squared, count = 0.0, 0
    with av.open(str(path)) as container:
        for i, decoded in enumerate(container.decode(video=0)):
            diff = decoded.to_ndarray(format="rgb24").astype(np.int32) - frames[i]
            squared += float(np.dot(diff.ravel(), diff.ravel()))
            count += diff.size
    if count != frames.size:
        raise RuntimeError(f"{path}: decoded {count // frames[0].size} of {len(frames)} frames")
    return float(10 * np.log10(255.0**2 * count / max(squared, 1e-9)))


def measure_settings(episode: list[np.ndarray], args) -> dict:
    """Every setting, --repeats times, interleaved; medians, and PSNR of the first repeat."""
    runs: dict[str, list[dict]] = {name: [] for name in args.settings}
    psnr: dict[str, float] = {}
    for repeat in range(args.repeats):
        for name in args.settings:
            out = args.out / "videos" / (SETTINGS[name].replace(":", "_") or "shmpipe")
            out.mkdir(parents=True, exist_ok=True)
            runs[name].append(encode_setting(episode, out, SETTINGS[name], args.fps))
            if name not in psnr:
                psnr[name] = float(np.mean([psnr_db(out / f"cam{c}.mp4", frames)
                                            for c, frames in enumerate(episode)]))  # fmt: skip
            print(f"[flush] #{repeat} {name}: {runs[name][-1]}", flush=True)
    table = {}
    for name, results in runs.items():
        table[name] = {k: statistics.median(r[k] for r in results) for k in results[0]}
        table[name] |= {"psnr_db": psnr[name], "runs": results}
    base = table.get(REFERENCE)
    for row in table.values():
        if base:
            row["bytes_change"] = row["bytes"] / base["bytes"] - 1
            row["psnr_change_db"] = row["psnr_db"] - base["psnr_db"]
            row["within_tolerance"] = bool(
                abs(row["bytes_change"]) <= BYTES_TOLERANCE
                and abs(row["psnr_change_db"]) <= PSNR_TOLERANCE_DB
            )
    return table


def record_episode(episode: list[np.ndarray], params: str, args) -> dict:
    """shmpipe records the episode paced at --fps; finish_episode's timings."""
    from bench.capacity_streams import paced_loop
    from shmpipe import Pipeline

    names = [f"observation.images.cam{c}" for c in range(len(episode))]
    root = args.out / "pipeline" / (params.replace(":", "_") or "shmpipe")
    shutil.rmtree(root, ignore_errors=True)
    cameras = {n: f.shape[1:] for n, f in zip(names, episode, strict=True)}
    with Pipeline(root=root, fps=args.fps, encoder=config(params), cameras=cameras) as pipe:

        def add(t: int) -> None:
            pipe.add_frame(
                {n: frames[t] for n, frames in zip(names, episode, strict=True)}, task="flush"
            )

        paced_loop(add, lambda: (0, 0), args.fps, len(episode[0]))
        t0 = time.perf_counter()
        timings = pipe.finish_episode().timings
        timings["wall"] = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    return timings | {"finish_over_encoder_flush": timings["total"] / timings["encoder_flush"]}


def measure_pipeline(episode: list[np.ndarray], args) -> dict:
    choices = {REFERENCE: SVT_OWN, SHMPIPE_DEFAULT: ""}
    runs: dict[str, list[dict]] = {name: [] for name in choices}
    for repeat in range(args.repeats):
        for name, params in choices.items():
            runs[name].append(record_episode(episode, params, args))
            print(f"[flush] pipeline #{repeat} {name}: {runs[name][-1]}", flush=True)
    return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} | {"runs": rs}
            for name, rs in runs.items()}  # fmt: skip


def markdown(table: dict, pipeline: dict, args) -> str:
    lines = [f"{args.cameras} cameras {args.height}x{args.width}, {args.frames} frames, medians "
             f"of {args.repeats}; changes vs LeRobot's options (libsvtav1, yuv420p, g=2, crf=30, "
             "preset 12)", "",
             "| setting | fps per camera | flush s | frames held | bytes | bytes vs LeRobot's "
             "| PSNR dB | PSNR vs LeRobot's | within 5 % / 0.3 dB |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in table.items():
        lines.append(f"| {name} | {r['fps']:.1f} | {r['flush_s']:.3f} | {r['held']:.0f} "
                     f"| {r['bytes']:.0f} | {100 * r.get('bytes_change', 0):+.1f} % "
                     f"| {r['psnr_db']:.2f} | {r.get('psnr_change_db', 0):+.2f} "
                     f"| {'yes' if r.get('within_tolerance') else 'no'} |")  # fmt: skip
    if pipeline:
        lines += ["", "| shmpipe with | finish_episode s | encoders' own flush s | ratio "
                  "| video_flush s | after the last worker s |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for name, r in pipeline.items():
            after = r.get("after_flush", r["total"] - r["video_flush"])
            lines.append(
                f"| {name} | {r['total']:.3f} | {r['encoder_flush']:.3f} "
                f"| {r['finish_over_encoder_flush']:.2f} | {r['video_flush']:.3f} | {after:.3f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flush_settings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_camera_arguments(parser)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="subset of the table")
    parser.add_argument(
        "--no-pipeline",
        dest="pipeline",
        action="store_false",
        help="skip recording through shmpipe (finish_episode vs the encoders' flush)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.settings = [s for s in args.settings.split(",") if s]
    if unknown := set(args.settings) - set(SETTINGS):
        parser.error(f"unknown settings {sorted(unknown)}; choose from {list(SETTINGS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    from bench.frames import episode_frames

    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    episode = episode_frames(args.cameras, args.frames, args.height, args.width, args.seed)
    table = measure_settings(episode, args)
    pipeline = measure_pipeline(episode, args) if args.pipeline else {}
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "settings": table,
              "pipeline": pipeline}  # fmt: skip
    (args.out / "flush.json").write_text(json.dumps(report, indent=1))
    (args.out / "flush.md").write_text(markdown(table, pipeline, args))
    print(markdown(table, pipeline, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
