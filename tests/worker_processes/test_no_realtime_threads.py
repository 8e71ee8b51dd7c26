"""No worker thread is ever real-time, so none can keep the control loop off the CPU.

As root SVT-AV1 makes its threads SCHED_FIFO 99; demoting them after the fact left each encoder's
main thread in FIFO 99 from start()'s codec probe until its first frame (and the codec threads
that frame starts inherited it): with the loop in FIFO 10 on two cores, the first frames after
start() could wait seconds (issue 27). Workers now give up CAP_SYS_NICE before any codec opens."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from shmpipe import Pipeline
from shmpipe.system import realtime

REALTIME = (os.SCHED_FIFO, os.SCHED_RR)


needs_fifo = pytest.mark.skipif(not realtime.allowed(), reason="SCHED_FIFO is not permitted here: "
                                "SVT-AV1 makes no real-time thread either")  # fmt: skip


def realtime_threads(pid: int, skip: int | None = None) -> list[int]:
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            if int(tid) != skip and os.sched_getscheduler(int(tid)) in REALTIME:
                out.append(int(tid))
        except OSError:
            continue  # the thread ended
    return out


@needs_fifo
@pytest.mark.parametrize("loop", ["normal", "realtime"])
@pytest.mark.parametrize("backend", ["process", "thread"])
def test_no_worker_thread_is_realtime_from_start_through_the_first_frames(tmp_path, backend, loop):
    """`loop` "realtime": the control loop is SCHED_FIFO before start(), without
    SCHED_RESET_ON_FORK (a robot's own choice), so every thread it starts inherits that; the
    workers, the watchdog and the committer each leave it."""
    cams = {"front": (240, 320, 3), "wrist": (240, 320, 3)}
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (240, 320, 3), np.uint8) for _ in range(8)]
    control = threading.get_native_id()  # the loop's own thread is FIFO 10 on purpose
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    if loop == "realtime":
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(5))
    try:
        with Pipeline(tmp_path, fps=30, cameras=cams, backend=backend) as pipe:
            pids = {c.worker_pid for c in pipe.status().cameras.values()}
            seen = {pid: realtime_threads(pid, control) for pid in pids}
            for k in range(40):
                pipe.add_frame({name: frames[k % 8] for name in cams}, task="t")
                if k % 5 == 0:
                    for pid in pids:
                        seen[pid] += realtime_threads(pid, control)
                if k == 19:
                    pipe.finish_episode(wait=False)  # the committer thread starts
            pipe.finish_episode()
            for pid in pids:
                seen[pid] += realtime_threads(pid, control)
    finally:
        os.sched_setscheduler(0, *before)
    assert not any(seen.values()), f"real-time worker threads: {seen}"


@needs_fifo
def test_forbid_takes_realtime_from_the_calling_thread_only():
    answers = {}

    def worker():
        answers["forbidden"] = realtime.forbid(whole_process=False)
        answers["worker may"] = realtime.allowed()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert answers == {"forbidden": True, "worker may": False}
    assert realtime.allowed(), "the caller's own thread lost SCHED_FIFO too"
