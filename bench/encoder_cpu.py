"""CPU per frame of the encoder alone: shmpipe's episode writer against raw PyAV, and SVT-AV1's lp.

    python -m bench.encoder_cpu --streams 4 --frames 96 --repeats 3     # 480x640

Issue 29 asked where shmpipe's encoder spends more CPU per frame than the raw encoder. Process
CPU time (getrusage), not wall time, so a busy machine changes the figures little. Cases, each
encoding the same camera-like clips in N threads of this process at once:
- raw: bench.codec.open_video and encode(from_numpy_buffer) in a loop (bench.raw_encoder's);
- writer: shmpipe.video.episode_writer.EpisodeVideoWriter (crash-safe fragments flushed at every
  keyframe, codec threads moved to nice 0), as an encoder worker runs it;
- raw at lp=1 and at lp=cores: the threads SVT-AV1 may use per encoder (identical bytes).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import threading
from pathlib import Path

import numpy as np

from bench.codec import codec_options, open_video
from shmpipe.system import priority
from shmpipe.video.encoder_config import VideoEncoderConfig
from shmpipe.video.episode_writer import DEMOTE_AGAIN_AT


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def encode_raw(clip: np.ndarray, path: Path, frames: int, lp_cameras: int) -> None:
    """`lp_cameras`: the camera count whose lp shmpipe's formula gives (encoder_threads). As
    root SVT-AV1 makes its threads SCHED_FIFO 99, which on a busy machine alone saves it CPU
    per frame (nothing preempts it): they go to nice 0 as shmpipe's do, at the same frames."""
    import av

    container, stream = open_video(path, VideoEncoderConfig(), *clip.shape[1:3], 30, lp_cameras)
    for i in range(frames):
        frame = av.VideoFrame.from_numpy_buffer(clip[i % len(clip)], format="rgb24")
        container.mux(stream.encode(frame))
        if i in DEMOTE_AGAIN_AT or i % 150 == 0:
            priority.apply(priority.thread_ids(), priority.DEFAULT_ENCODER_PRIORITY)
    container.mux(stream.encode(None))
    container.close()


def encode_writer(clip: np.ndarray, path: Path, frames: int, lp_cameras: int) -> None:
    from shmpipe.video.episode_writer import EpisodeVideoWriter
    from shmpipe.video.settings import VideoSettings

    height, width = clip.shape[1:3]
    options = codec_options(VideoEncoderConfig(), lp_cameras)
    writer = EpisodeVideoWriter(path, VideoSettings(30, width, height, "libsvtav1", "yuv420p",
                                                    options, 0, "process"))  # fmt: skip
    for i in range(frames):
        writer.encode(clip[i % len(clip)], i)
    writer.finish()


def run_case(encode, clips: list[np.ndarray], frames: int, lp_cameras: int, out: Path) -> dict:
    """Every clip encoded in its own thread at once; CPU ms per frame and bytes written."""
    paths = [out / f"cam{i}.mp4" for i in range(len(clips))]
    threads = [threading.Thread(target=encode, args=(c, p, frames, lp_cameras))
               for c, p in zip(clips, paths, strict=True)]  # fmt: skip
    start = _cpu_s()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spent = _cpu_s() - start
    return {"cpu_ms_per_frame": 1e3 * spent / (frames * len(clips)),
            "bytes": sum(p.stat().st_size for p in paths)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.encoder_cpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--size", default="480x640", help="HxW")
    parser.add_argument("--frames", type=int, default=96, help="per stream")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("SVT_LOG", "1")
    from bench.frames import CameraFrames

    height, width = (int(x) for x in args.size.split("x"))
    clips = [np.stack([CameraFrames(c, height, width, seed=0).frame(t) for t in range(48)])
             for c in range(args.streams)]  # fmt: skip
    cores = len(os.sched_getaffinity(0))
    cases = {"raw (shmpipe's lp)": (encode_raw, args.streams),
             "writer (shmpipe's lp)": (encode_writer, args.streams),
             "raw lp=1": (encode_raw, cores * 2),
             f"raw lp={cores} (all cores)": (encode_raw, 1)}  # fmt: skip
    results: dict[str, list[dict]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(prefix="encoder-cpu-") as tmp:
        for repeat in range(args.repeats):
            for case, (name, (encode, lp_cameras)) in enumerate(cases.items()):  # interleaved
                out = Path(tmp) / f"{case}-{repeat}"
                out.mkdir()
                results[name].append(run_case(encode, clips, args.frames, lp_cameras, out))
    print(f"| {args.streams} streams {args.size}, {args.frames} frames each | CPU ms/frame, "
          f"median (min-max) of {args.repeats} | bytes |\n|---|---|---|")  # fmt: skip
    for name, runs in results.items():
        cpu = [r["cpu_ms_per_frame"] for r in runs]
        print(f"| {name} | {statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f}) "
              f"| {runs[0]['bytes']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
