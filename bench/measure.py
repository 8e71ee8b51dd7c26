"""Small measurement helpers: latency summaries, memory and CPU time of processes.

Kept apart from the runners so every variant reports the same figure the same way.
psutil is optional; without it, CPU time of other processes is reported as missing.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np


def summarize_ms(values_ms) -> dict[str, float]:
    """p50/p99/max/mean of a list of milliseconds (NaN when empty)."""
    values = np.asarray(values_ms, dtype=np.float64)
    if values.size == 0:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan"), "mean": 0.0}
    return {
        "n": int(values.size),
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
        "mean": float(values.mean()),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds_self() -> float:
    """User + system CPU seconds of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds_of(pid: int) -> float | None:
    """User + system CPU seconds of another live process, or None if unknown."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
    except Exception:  # psutil missing, or the process is gone
        return None
    return times.user + times.system


def peak_rss_mb_of(pid: int) -> float | None:
    """Peak resident set size of another live process (VmHWM), or None if unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def machine_busy_fraction(seconds: float = 0.5) -> float | None:
    """Share of all cores busy over the next `seconds` (call while idle: it is others' load)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(1, total1 - total0)
