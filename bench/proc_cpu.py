"""CPU seconds of processes and of single threads, read from /proc (no psutil needed).

The capacity bench splits one process's CPU time between its control loop, its encoders and its
stats reader; for threads that is only possible per thread id, which /proc/<pid>/task gives.
"""

from __future__ import annotations

import os
import threading

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_cpu_seconds(path: str) -> float | None:
    """utime + stime of a /proc/.../stat file, or None if it is gone."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14 and 15 of proc(5)


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process, all its threads."""
    return _stat_cpu_seconds(f"/proc/{pid}/stat")


def thread_cpu_s(native_id: int) -> float | None:
    """User + system CPU seconds of one thread of this process."""
    return _stat_cpu_seconds(f"/proc/self/task/{native_id}/stat")


def named_thread_ids(prefix: str) -> list[int]:
    """Native ids of this process's Python threads whose name starts with `prefix`."""
    return [t.native_id for t in threading.enumerate() if t.name.startswith(prefix) and t.native_id]
