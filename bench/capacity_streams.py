"""N camera streams paced at the frame rate into one recorder; what waits, and who used the CPU.

Each system gets the same frames (a short camera-like clip per stream, played forwards and back)
from one control loop that adds one frame per stream per tick, as a robot would, and samples
how many frames were added but not yet taken by an encoder. bench.capacity judges from those
samples whether the system keeps up. Systems: shmpipe (process or thread backend), the raw
encoder (PyAV encode() in one thread per stream of this process, nothing else: the ceiling) and
LeRobot 0.4.4's StreamingVideoEncoder.
"""

from __future__ import annotations

import functools
import os
import queue
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.proc_cpu import named_thread_ids, process_cpu_s, thread_cpu_s
from shmpipe.system import priority
from shmpipe.video.episode_writer import DEMOTE_AGAIN_AT

SAMPLE_HZ = 10.0


@dataclass
class StreamTrace:
    """Samples of one paced run: time (s from the first tick), frames waiting and taken (sums
    over the streams), and CPU seconds per part of the system over the loop."""

    t: list[float] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    taken: list[int] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    late_ticks: int = 0


def clip_index(i: int, length: int) -> int:
    """Frame i of a clip played forwards and back (no cut where it wraps)."""
    if length < 2:
        return 0
    period = 2 * (length - 1)
    k = i % period
    return k if k < length else period - k


def paced_loop(add: Callable[[int], None], sample: Callable[[], tuple[int, int]],
               fps: int, ticks: int) -> StreamTrace:  # fmt: skip
    """add(t) at start + t/fps for each tick; sample() -> (waiting, taken) ~10 times a second."""
    trace = StreamTrace()
    period, clock = 1.0 / fps, time.perf_counter
    start = clock() + period
    next_sample = start
    for t in range(ticks):
        delay = start + t * period - clock()
        if delay > 0:
            time.sleep(delay)
        elif delay < -period:
            trace.late_ticks += 1
        add(t)
        now = clock()
        if now >= next_sample:
            waiting, taken = sample()
            trace.t.append(now - start)
            trace.waiting.append(waiting)
            trace.taken.append(taken)
            next_sample += 1.0 / SAMPLE_HZ
    return trace


class CpuClock:
    """CPU seconds of named parts (each a callable returning seconds) between start and stop."""

    def __init__(self, parts: dict[str, Callable[[], float | None]]) -> None:
        self.parts, self.begin = parts, {}

    def start(self) -> None:
        self.begin = {name: read() for name, read in self.parts.items()}

    def stop(self) -> dict[str, float]:
        spent = {}
        for name, read in self.parts.items():
            end, begin = read(), self.begin.get(name)
            if end is not None and begin is not None:
                spent[name] = end - begin
        return spent


def encoder_config(svt_params: str):
    """LeRobot's defaults (shmpipe's VideoEncoderConfig), plus svtav1-params if given."""
    from shmpipe.video.encoder_config import VideoEncoderConfig

    return VideoEncoderConfig(extra_options={"svtav1-params": svt_params} if svt_params else {})


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_shmpipe(
    backend: str, clips: list[np.ndarray], fps: int, ticks: int, svt_params: str = ""
) -> StreamTrace:
    """shmpipe.Pipeline with SHMPIPE_BACKEND=backend, add_frame copying each frame (+ state)."""
    os.environ["SHMPIPE_BACKEND"] = backend
    from bench.frames import STATE_DIM
    from shmpipe import Pipeline

    names = [f"observation.images.cam{i}" for i in range(len(clips))]
    state = np.zeros(STATE_DIM, dtype=np.float32)
    root = Path(tempfile.mkdtemp(prefix="capacity-"))
    cameras = {name: clip.shape[1:] for name, clip in zip(names, clips, strict=True)}
    pipe = Pipeline(root=root / "ds", fps=fps, cameras=cameras, encoder=encoder_config(svt_params),
                    features={"observation.state": (STATE_DIM,)})  # fmt: skip
    try:
        pipe.start()
        cpu = CpuClock(_shmpipe_cpu_parts(backend, pipe.status()))

        def add(t: int) -> None:
            frame = {
                n: clip[clip_index(t, len(clip))] for n, clip in zip(names, clips, strict=True)
            }
            pipe.add_frame(frame | {"observation.state": state}, task="capacity")

        def sample() -> tuple[int, int]:
            cams = pipe.status().cameras.values()
            taken = sum(c.frames_encoded for c in cams)
            return sum(c.frames_written + c.backlog for c in cams) - taken, taken

        cpu.start()
        trace = paced_loop(add, sample, fps, ticks)
        trace.cpu_s = cpu.stop()
        pipe.cancel_episode()
    finally:
        pipe.close()
        shutil.rmtree(root, ignore_errors=True)
    if backend == "thread":  # the encoders' threads (and SVT-AV1's) are the rest of the process
        rest = trace.cpu_s.pop("process") - trace.cpu_s["control"] - trace.cpu_s["stats"]
        trace.cpu_s["encoders"] = rest
    return trace


def _shmpipe_cpu_parts(backend: str, status) -> dict[str, Callable[[], float | None]]:
    if backend == "thread":
        main = threading.main_thread().native_id
        stats_ids = named_thread_ids("shmpipe-stats")
        return {"process": own_cpu_s, "control": lambda: thread_cpu_s(main),
                "stats": lambda: sum(thread_cpu_s(i) or 0.0 for i in stats_ids)}  # fmt: skip
    encoders = [c.worker_pid for c in status.cameras.values()]
    return {"control": own_cpu_s, "stats": lambda: process_cpu_s(status.stats.worker_pid),
            "encoders": lambda: sum(process_cpu_s(pid) or 0.0 for pid in encoders)}  # fmt: skip


class RawStream:
    """One stream of the raw encoder: a queue of frames and a thread that encodes them."""

    def __init__(self, path: Path, shape: tuple, fps: int, num_streams: int, svt: str) -> None:
        from bench.codec import open_video

        settings = encoder_config(svt)
        self.container, self.stream = open_video(path, settings, *shape[:2], fps, num_streams)
        self.frames: queue.SimpleQueue = queue.SimpleQueue()
        self.taken = 0
        self.thread = threading.Thread(target=self._encode, name="raw-encoder", daemon=True)
        self.thread.start()

    def _encode(self) -> None:
        import av

        while (frame := self.frames.get()) is not None:
            self.taken += 1
            video_frame = av.VideoFrame.from_numpy_buffer(frame, format="rgb24")
            self.container.mux(self.stream.encode(video_frame))

    def close(self) -> None:
        """Drop what still waits, flush and close the file."""
        while not self.frames.empty():
            self.frames.get_nowait()
        self.frames.put(None)
        self.thread.join()
        self.container.mux(self.stream.encode(None))
        self.container.close()


def run_raw(clips: list[np.ndarray], fps: int, ticks: int, svt_params: str = "") -> StreamTrace:
    """PyAV alone, one encoder thread per stream in this process, at shmpipe's encoder priority
    (nice 0): the machine's ceiling."""
    root = Path(tempfile.mkdtemp(prefix="capacity-raw-"))
    streams = [RawStream(root / f"cam{i}.mp4", c.shape[1:], fps, len(clips), svt_params)
               for i, c in enumerate(clips)]  # fmt: skip
    added = [0]

    def add(t: int) -> None:
        for stream, clip in zip(streams, clips, strict=True):
            stream.frames.put(clip[clip_index(t, len(clip))])
        added[0] += len(streams)
        if t in DEMOTE_AGAIN_AT or t % 150 == 0:
            # as root SVT-AV1 makes every thread of the process SCHED_FIFO 99, which would put
            # this ceiling above everything else on the machine; shmpipe's encoders run at nice
            # 0, and so does the ceiling (again a few times: SVT-AV1 sets it from its threads)
            priority.apply(priority.thread_ids(), priority.DEFAULT_ENCODER_PRIORITY)

    def sample() -> tuple[int, int]:
        taken = sum(s.taken for s in streams)
        return added[0] - taken, taken

    try:
        trace = _timed_in_process(lambda: paced_loop(add, sample, fps, ticks))
    finally:
        for stream in streams:
            stream.close()
        shutil.rmtree(root, ignore_errors=True)
    return trace


def run_lerobot(clips: list[np.ndarray], fps: int, ticks: int, svt_params: str = "") -> StreamTrace:
    """LeRobot 0.4.4's StreamingVideoEncoder with its defaults (libsvtav1, g=2, crf=30, preset
    12, its own thread count), except an unbounded queue: its default of 30 drops frames instead
    of letting the backlog grow, which is what this bench measures. `svt_params` is not
    passed: 0.4.4 has no way to give them. Run as root, its encoder threads are SCHED_FIFO 99
    (SVT-AV1's doing; LeRobot leaves them so), above everything else on the machine."""
    from lerobot.datasets.video_utils import StreamingVideoEncoder

    names = [f"observation.images.cam{i}" for i in range(len(clips))]
    encoder = StreamingVideoEncoder(fps=fps, queue_maxsize=0)
    root = Path(tempfile.mkdtemp(prefix="capacity-lerobot-"))
    encoder.start_episode(names, root)
    added = [0]

    def add(t: int) -> None:
        for name, clip in zip(names, clips, strict=True):
            encoder.feed_frame(name, clip[clip_index(t, len(clip))])
        added[0] += len(names)

    def sample() -> tuple[int, int]:
        waiting = sum(q.qsize() for q in encoder._frame_queues.values())
        return waiting, added[0] - waiting

    try:
        trace = _timed_in_process(lambda: paced_loop(add, sample, fps, ticks))
        for frames in encoder._frame_queues.values():  # drop the backlog, keep the flush
            while not frames.empty():
                frames.get_nowait()
        encoder.finish_episode()
    finally:
        encoder.close()
        shutil.rmtree(root, ignore_errors=True)
    return trace


def _timed_in_process(loop: Callable[[], StreamTrace]) -> StreamTrace:
    """Run the loop; CPU of the control thread, and of the rest of this process (encoders)."""
    main = threading.main_thread().native_id
    cpu = CpuClock({"process": own_cpu_s, "control": lambda: thread_cpu_s(main)})
    cpu.start()
    trace = loop()
    spent = cpu.stop()
    trace.cpu_s = {"control": spent["control"], "encoders": spent["process"] - spent["control"]}
    return trace


SYSTEMS: dict[str, Callable[..., StreamTrace]] = {
    "process": functools.partial(run_shmpipe, "process"),
    "thread": functools.partial(run_shmpipe, "thread"),
    "raw": run_raw,
    "lerobot": run_lerobot,
}
