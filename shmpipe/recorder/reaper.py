"""Killed worker processes are reaped here, off the control thread.

A worker killed while it waits on a stalled disk stays in uninterruptible sleep (state D) until
the disk answers, and `Popen.wait()` would wait with it: add_frame and close() would then hang
on the disk. `reap` takes the process and returns at once; one daemon thread polls what it was
given until each has exited (it ends when nothing is left).
"""

from __future__ import annotations

import subprocess
import threading
import time

from shmpipe.system import priority

POLL_S = 0.05

_pending: list[subprocess.Popen] = []
_lock = threading.Lock()
_thread: list[threading.Thread] = []  # the running reaper, if any


def reap(process: subprocess.Popen) -> None:
    """Kill `process` if it still runs and collect its exit status in the background."""
    if process.poll() is None:
        try:
            process.kill()
        except OSError:
            pass
    if process.poll() is not None:
        return
    with _lock:
        _pending.append(process)
        if not _thread:
            _thread.append(threading.Thread(target=_run, name="shmpipe-reaper", daemon=True))
            _thread[0].start()


def pending() -> int:
    """Killed processes not yet reaped (tests read this)."""
    with _lock:
        return len(_pending)


def _run() -> None:
    priority.leave_realtime()  # not the control loop's real-time policy
    while True:
        with _lock:
            _pending[:] = [p for p in _pending if p.poll() is None]
            if not _pending:
                _thread.clear()
                return
        time.sleep(POLL_S)
