"""Nothing leaks: shared memory and workers are gone after close, exceptions, Ctrl-C and kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import posix_ipc
import pytest

from shmpipe import Pipeline
from shmpipe.ipc import names
from tests.helpers.episodes import episode_files
from tests.helpers.media import decode_video
from tests.helpers.paths import CHILDREN
from tests.helpers.processes import OUR_CONTROL_PROCESSES, leaked, start_recorder, stop_process

CHILD = CHILDREN / "recorder_child.py"
CAMERAS = {"front": (48, 64, 3)}


def gone_within(pids: list[int], seconds: float) -> float | None:
    """Seconds until every pid has exited (None if some still live after `seconds`)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if not any(names.pid_alive(p) for p in pids):
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def start_child(root: Path, backend: str) -> tuple[subprocess.Popen, dict]:
    return start_recorder([sys.executable, str(CHILD), str(root), backend])


def test_exception_in_with_block_removes_everything(tmp_path, backend):
    with pytest.raises(KeyError):
        with Pipeline(tmp_path, fps=30, cameras=CAMERAS) as pipe:
            pipe.add_frame({"front": np.zeros((48, 64, 3), np.uint8)}, task="t")
            pids = [pipe.status().cameras["front"].worker_pid, pipe.status().stats.worker_pid]
            raise KeyError("boom")
    assert leaked() == []
    assert episode_files(tmp_path) == [], "the open episode left files"
    if backend == "process":
        assert gone_within(pids, 2.0) is not None


def test_killed_control_process_takes_its_workers_and_shared_memory_along(tmp_path):
    child, info = start_child(tmp_path, "process")
    owner = child.pid
    assert any(e.startswith(f"shmpipe_{owner}_") for e in names.list_objects())
    child.kill()
    child.wait()
    took = gone_within(info["pids"], 2.0)
    assert took is not None, f"workers {info['pids']} still alive 2 s after their owner died"
    print(f"control SIGKILL: workers gone after {took:.3f} s")
    deadline = time.monotonic() + 2.0
    while leaked() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert leaked() == []
    # the episode finished before the kill is intact; the interrupted one left no file
    assert len(decode_video(info["first"])[0]) == 10
    assert [f.rsplit("/", 1)[1] for f in episode_files(tmp_path)] == [
        "file-000.parquet",
        "file-000.mp4",
        "file-000.mp4",
    ]
    # a new pipeline on the same root starts clean and continues
    with Pipeline(
        tmp_path,
        fps=30,
        cameras={"front": (48, 64, 3), "wrist": (48, 64, 3)},
        features={"observation.state": (6,)},
        backend="thread",
    ) as pipe:
        assert not [e for e in names.list_objects() if names.owner_pid(e) == owner]
        pipe.add_frame(
            {
                "front": np.zeros((48, 64, 3), np.uint8),
                "wrist": np.zeros((48, 64, 3), np.uint8),
                "observation.state": np.zeros(6),
            },
            task="t",
        )
        result = pipe.finish_episode()
        assert (result.episode_index, result.num_frames) == (1, 1)


def test_start_removes_files_a_killed_run_left_half_written(tmp_path):
    Pipeline(tmp_path, fps=30, cameras=CAMERAS, backend="thread").start().close()  # the dataset
    video_dir = tmp_path / "videos" / "front" / "chunk-000"
    video_dir.mkdir(parents=True)
    (video_dir / "file-000.mp4.partial.000000").write_bytes(b"x")
    (video_dir / "file-000.mp4.joining").write_bytes(b"x")
    (tmp_path / "data" / "chunk-000").mkdir(parents=True)
    (tmp_path / "data" / "chunk-000" / "file-000.parquet.partial").write_bytes(b"x")
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, backend="thread"):
        assert episode_files(tmp_path) == []


def test_ctrl_c_in_the_recording_loop_exits_cleanly(tmp_path, backend):
    child, info = start_child(tmp_path, backend)
    child.send_signal(signal.SIGINT)
    try:
        _, err = child.communicate(timeout=20)
    finally:  # a child that ignored it must not hold its shared memory into later tests
        stop_process(child)
    assert "KeyboardInterrupt" in err
    assert gone_within(info["pids"], 2.0) is not None
    assert leaked() == []
    assert len(decode_video(info["first"])[0]) == 10
    videos = sorted(p.name for p in (tmp_path / "videos" / "front").rglob("*") if p.is_file())
    assert videos == ["file-000.mp4"], "the interrupted episode must leave no file"


def test_start_sweeps_objects_left_by_dead_owners(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    OUR_CONTROL_PROCESSES.add(dead.pid)
    stale = names.object_name(dead.pid, "deadbeef", "ring0")
    posix_ipc.SharedMemory(stale, posix_ipc.O_CREX, size=4096).close_fd()
    posix_ipc.Semaphore(names.object_name(dead.pid, "deadbeef", "bell0"), posix_ipc.O_CREX).close()
    assert len(leaked()) == 2
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, backend="thread"):
        assert not [e for e in names.list_objects() if f"_{dead.pid}_" in e]


@pytest.fixture(autouse=True)
def normal_control_thread():
    """These tests check the control thread's scheduling from SCHED_OTHER nice 0, as a script
    starts; an earlier test that encoded with SVT-AV1 in this thread may have left it FIFO."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    yield


def encoded(pipe, camera: str, n: int) -> None:
    """Wait until the encoder has read `n` frames (its codec threads then exist)."""
    deadline = time.monotonic() + 10
    while pipe.status().cameras[camera].frames_encoded < n and time.monotonic() < deadline:
        time.sleep(0.02)


def scheduling(tids) -> dict[int, tuple[int, int]]:
    return {t: (os.sched_getscheduler(t), os.getpriority(os.PRIO_PROCESS, t)) for t in tids}


@pytest.mark.parametrize("prio", ["idle", 10])
def test_encoder_threads_run_below_the_control_loop(tmp_path, prio):
    want = (os.SCHED_IDLE, 19) if prio == "idle" else (os.SCHED_OTHER, prio)
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, backend="process", encoder_priority=prio) as p:
        for i in range(40):
            p.add_frame({"front": np.full((48, 64, 3), i, np.uint8)}, task="t")
        encoded(p, "front", 40)
        pid = p.status().cameras["front"].worker_pid
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        assert len(tids) > 2, "the encoder has not started its threads"
        assert set(scheduling(tids).values()) == {want}, scheduling(tids)
        p.finish_episode()
    assert scheduling([0])[0] == (os.SCHED_OTHER, 0)  # the control thread is itself again


def control_policy() -> int:
    return os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK


@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_FIFO needs root (or CAP_SYS_NICE)")
def test_control_thread_runs_fifo_while_recording_and_is_restored(tmp_path):
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, backend="process") as p:
        assert control_policy() == os.SCHED_FIFO and os.sched_getparam(0).sched_priority == 10
        p.add_frame({"front": np.zeros((48, 64, 3), np.uint8)}, task="t")
        encoded(p, "front", 1)
        pid = p.status().cameras["front"].worker_pid
        # what the control thread starts runs as a normal task (SCHED_RESET_ON_FORK)
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER
        p.finish_episode()
    assert control_policy() == os.SCHED_OTHER
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, control_priority=None, backend="thread"):
        assert control_policy() == os.SCHED_OTHER


def test_thread_backend_moves_only_worker_threads(tmp_path):
    main = threading.get_native_id()
    before = set(os.listdir("/proc/self/task"))
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, backend="thread", encoder_priority=15) as p:
        for i in range(40):
            p.add_frame({"front": np.full((48, 64, 3), i, np.uint8)}, task="t")
        encoded(p, "front", 40)
        workers = {int(t) for t in set(os.listdir("/proc/self/task")) - before}
        # the supervisor's watchdog belongs to the control side: it keeps its priority
        workers -= {t.native_id for t in threading.enumerate() if t.name == "shmpipe-watchdog"}
        assert len(workers) > 2, "the workers and the codec's threads should be running"
        assert set(scheduling(workers).values()) == {(os.SCHED_OTHER, 15)}, scheduling(workers)
        assert scheduling([main])[main] != (os.SCHED_OTHER, 15)
        p.finish_episode()
    assert scheduling([main])[main] == (os.SCHED_OTHER, 0)
