"""The process limits a session can run into, named: cgroup `pids.max`, `ulimit -u`, `-n`, `-v`.

start() proves what a session needs by doing it: each encoder worker opens its codec once, with
all of the codec's threads and memory, before it says it is ready, and the control process must
keep EPISODE_FDS descriptors free for what an episode opens. When that fails, these functions
say which limit is short, instead of an errno from every episode after it.
"""

from __future__ import annotations

import errno
import os
import resource
import threading

from shmpipe.errors import ConfigError, ShmpipeError, WorkerError
from shmpipe.recorder.memory_budget import controller_limit

EPISODE_FDS = 64  # descriptors an episode may hold open at once in the control process
EPISODE_THREADS = 8 + (os.cpu_count() or 1)  # the fsync pool, and Arrow's pool of one per core
TASK_ERRNOS = (errno.EAGAIN, errno.ENOMEM)  # a thread or process that could not be made
FD_ERRNOS = (errno.EMFILE, errno.ENFILE)


def _ulimit(option: str, which: int, unit: str = "") -> str | None:
    soft, _ = resource.getrlimit(which)
    return None if soft == resource.RLIM_INFINITY else f"ulimit {option} {soft}{unit}"


def pids_limit() -> str | None:
    """`cgroup pids.max N (M tasks in use)` of the tightest cgroup above us, if any."""
    found = controller_limit("pids", ("pids.max", "pids.current"), ("pids.max", "pids.current"))
    if found is None:
        return None
    return f"cgroup pids.max {found.limit} ({found.used} tasks in use, {found.where})"


def tasks_limits() -> list[str]:
    """The limits on threads and processes in force here (ulimit -u binds only non-root)."""
    nproc = _ulimit("-u", resource.RLIMIT_NPROC) if os.geteuid() != 0 else None
    return [x for x in (pids_limit(), nproc) if x]


def address_limit() -> str | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else f"ulimit -v {soft // 1024} (KiB)"


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def fds_limit() -> str:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"ulimit -n {soft} ({open_fds()} open)"


def short_limits(code: int | None) -> str:
    """The limits that can cause error `code` and are in force, as a phrase ("" if none).
    A thread's stack is address space: ulimit -v can stop one as a task limit does."""
    if code in FD_ERRNOS:
        found = [fds_limit()]
    elif code in TASK_ERRNOS:
        found = tasks_limits() + [address_limit()]
    else:
        return ""
    found = [x for x in found if x]
    return f"; a limit is short: {' or '.join(found)}" if found else ""


def free_fds_problem() -> str | None:
    """Why the control process cannot open an episode's files, or None."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= open_fds() + EPISODE_FDS:
        return None
    return (f"{fds_limit()} leaves fewer than the {EPISODE_FDS} descriptors an episode needs; "
            "raise it (ulimit -n 1024)")  # fmt: skip


def start_threads_problem(count: int) -> str | None:
    """Start `count` threads at once and stop them: the control process's share of an episode
    (the fsync pool, Arrow's writers). None if they started, else what failed."""
    release, started = threading.Event(), []
    try:
        for _ in range(count):
            thread = threading.Thread(target=release.wait, name="shmpipe-proof", daemon=True)
            thread.start()
            started.append(thread)
    except RuntimeError as exc:  # "can't start new thread": EAGAIN from pthread_create
        return f"{len(started)} of the {count} threads an episode needs started ({exc})"
    finally:
        release.set()
        for thread in started:
            thread.join()
    return None


def limit_error(exc: BaseException) -> ShmpipeError | None:
    """start()'s failure `exc` as an error naming the limit behind it, if a limit is."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, ShmpipeError) and code is None:
        return None
    if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
        code = errno.EAGAIN
    elif isinstance(exc, MemoryError):  # numpy's, or Python's: address space, as a rule
        code = errno.ENOMEM
    hint = short_limits(code)
    if not hint:
        return None
    if isinstance(exc, ShmpipeError):  # the same public class, the limit named
        kind = next(k for k in (ConfigError, WorkerError, ShmpipeError) if isinstance(exc, k))
        return kind(f"{exc}{hint}")
    return ConfigError(f"start(): {exc}{hint}")


def prove_room() -> None:
    """ConfigError naming the limit if the control process cannot open an episode's files or
    start its threads (with every worker running)."""
    problem = free_fds_problem()
    if problem is None and (problem := start_threads_problem(EPISODE_THREADS)) is not None:
        problem += short_limits(errno.EAGAIN)
    if problem is not None:
        raise ConfigError(f"start(): {problem}")
