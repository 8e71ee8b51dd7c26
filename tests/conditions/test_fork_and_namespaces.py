"""A recording process that forks, and recorders in another PID namespace sharing /dev/shm:
neither a child's exit nor a sweep of dead owners touches a live recording.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shmpipe import Pipeline
from shmpipe.ipc import names
from tests.helpers.episodes import assert_flat_episode, child_result
from tests.helpers.frames import flat_frame, value_of
from tests.helpers.paths import CHILDREN
from tests.helpers.processes import (
    own_objects,
    start_recorder,
    stop_process,
    unshare_works,
)

FPS = 30
SMALL = (48, 64, 3)


def in_forked_child(body) -> tuple[int, str]:
    """Run body() in a forked child that never returns into pytest; (exit code, its message)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code, message = 0, ""
        try:
            os.close(read_end)
            message = body() or ""
        except BaseException as exc:  # noqa: B036 - nothing may escape a forked child
            code, message = 1, f"{type(exc).__name__}: {exc}"
        finally:
            try:
                os.write(write_end, message.encode()[:4000])
            finally:
                os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as f:
        message = f.read().decode()
    return os.waitstatus_to_exitcode(status), message


def child_exits_at_once():
    return "exited"


def child_exits_like_an_interpreter():
    gc.collect()
    atexit._run_exitfuncs()  # weakref finalizers and every atexit hook, as at a normal exit
    return "exited after atexit"


@pytest.mark.parametrize(
    "how",
    ["os._exit", "interpreter_exit", "close_then_exit"],
)
def test_forked_child_exiting_leaves_the_parents_recording_alone(tmp_path, how):
    cams = {"front": SMALL, "wrist": SMALL}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="process") as pipe:
        for k in range(10):
            pipe.add_frame(flat_frame(cams, k), task="t")
        before = pipe.status()
        objects = own_objects()

        def close_then_exit():
            try:
                pipe.close()
            except RuntimeError:
                pass
            return child_exits_like_an_interpreter()

        body = {
            "os._exit": child_exits_at_once,
            "interpreter_exit": child_exits_like_an_interpreter,
            "close_then_exit": close_then_exit,
        }[how]
        code, message = in_forked_child(body)
        assert code == 0, message
        assert own_objects() == objects, "the child's exit removed the parent's shared memory"
        for k in range(10, 50):
            pipe.add_frame(flat_frame(cams, k), task="t")
            time.sleep(0.005)
        after = pipe.status()
        assert own_objects() == objects
        result = pipe.finish_episode()
        assert own_objects() == objects
    assert [c.worker_pid for c in after.cameras.values()] == [
        c.worker_pid for c in before.cameras.values()
    ], "the encoders were restarted after the child exited"
    assert after.stats.worker_pid == before.stats.worker_pid
    assert result.worker_restarts == 0
    assert_flat_episode(result, [value_of(k) for k in range(50)])


def test_add_frame_in_a_forked_child_raises_and_the_parent_keeps_recording(tmp_path):
    cams = {"front": SMALL, "wrist": SMALL}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="process") as pipe:
        for k in range(10):
            pipe.add_frame(flat_frame(cams, k), task="t")

        def add_in_child():
            try:
                pipe.add_frame(flat_frame(cams, 99), task="t")
            except RuntimeError as exc:
                if "fork" not in str(exc).lower():
                    raise AssertionError(f"message does not mention fork: {exc}") from exc
                return str(exc)
            raise AssertionError("add_frame in a forked child was accepted")

        code, message = in_forked_child(add_in_child)
        print(f"child's add_frame: {message}")
        assert code == 0, message
        for k in range(10, 30):
            pipe.add_frame(flat_frame(cams, k), task="t")
        result = pipe.finish_episode()
    assert result.worker_restarts == 0
    assert_flat_episode(result, [value_of(k) for k in range(30)])


def first_pid_free_here(start: int = 3, stop: int = 400) -> int | None:
    for pid in range(start, stop):
        if not Path(f"/proc/{pid}").exists():
            return pid
    return None


def test_sweep_keeps_the_objects_of_a_live_recorder_in_another_pid_namespace(tmp_path):
    why = unshare_works("--pid", "--fork", "--mount-proc", "--kill-child")
    if why:
        pytest.skip(why)
    # Make the recorder's pid inside its namespace one that no process has in ours (the case
    # where a pid check calls a live recorder dead): /bin/true takes pids 2 .. target-1.
    target = first_pid_free_here()
    trues = "/bin/true; " * ((target or 2) - 2)
    child, info = start_recorder(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
        + ["sh", "-c", trues + '"$@"; exit $?', "sh"]
        + [sys.executable, str(CHILDREN / "ns_recorder.py"), str(tmp_path / "ns")],
        stdin=subprocess.PIPE,
    )
    try:
        print(f"recorder's pid in its namespace: {info['pid']}; free here: {target}")
        assert info["objects"], "the recorder has no objects in /dev/shm"
        for _ in range(5):
            names.sweep_dead_owners()
            time.sleep(0.05)
        with Pipeline(tmp_path / "here", fps=FPS, cameras={"front": SMALL}, backend="thread"):
            pass  # start() sweeps dead owners too
        still = set(names.list_objects())
        swept = sorted(set(info["objects"]) - still)
        child.stdin.write("go\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=60)
    finally:
        stop_process(child)
    assert swept == [], f"the sweep removed a live recorder's objects: {swept}"
    assert child.returncode == 0, f"recorder failed ({child.returncode}): {err[-3000:]}"
    # judged by name, not by its pid: other test runs have recorders of that pid in theirs
    left, deadline = set(info["objects"]), time.monotonic() + 3.0
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left &= set(names.list_objects())
    assert not left, f"the recorder in the namespace left {sorted(left)}"
    result = json.loads(out.strip().splitlines()[-1])
    assert result["worker_restarts"] == 0
    assert_flat_episode(child_result(result), result["values"])
