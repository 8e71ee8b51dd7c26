"""Keep encoder threads below the control loop, without starving them.

Run as root, SVT-AV1 makes its threads SCHED_FIFO priority 99; three such encoders on two cores
made a 30 Hz loop in another process wake up to 893 ms late (FIELD-NOTES). So once an encoder has
opened, its threads are moved to the chosen `EncoderPriority`: "idle" (SCHED_IDLE: only CPU time
nobody else wants; starves beside a busy policy or ROS node) or a nice level 0..19 under
SCHED_OTHER (a share of the CPU by weight). The README's priority matrix says which to choose:
beside a busy policy or ROS node only nice 0 keeps the encoders at 30 fps, and only a control
thread in SCHED_FIFO then keeps its wake-ups within 2 ms; `raise_control_thread` does that when
the process may (root, CAP_SYS_NICE or an RLIMIT_RTPRIO), with SCHED_RESET_ON_FORK so that the
threads and worker processes it starts are normal tasks again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from shmpipe.errors import ConfigError

EncoderPriority = Literal["idle"] | int
IDLE = "idle"
DEFAULT_ENCODER_PRIORITY: EncoderPriority = 0
DEFAULT_CONTROL_PRIORITY = 10  # SCHED_FIFO priority for the thread that calls start()


def check(priority: object) -> EncoderPriority:
    """The priority as given if valid; ConfigError (a ValueError) naming the option otherwise."""
    valid_int = isinstance(priority, int) and not isinstance(priority, bool)
    if priority == IDLE or (valid_int and 0 <= priority <= 19):
        return priority
    raise ConfigError(
        f"encoder_priority: expected 'idle' or a nice level 0..19 (0 = as the control loop, "
        f"19 = lowest), got {priority!r}"
    )


def thread_ids() -> set[int]:
    """Kernel thread ids of this process."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except FileNotFoundError:
        return set()


def apply(tids: set[int], priority: EncoderPriority) -> int:
    """Put each thread at `priority`; returns how many were changed.

    Threads that exited meanwhile, or that we may not change, are skipped: a missed change
    costs latency, not correctness."""
    policy = os.SCHED_IDLE if priority == IDLE else os.SCHED_OTHER
    nice = 19 if priority == IDLE else priority
    changed = 0
    for tid in tids:
        try:
            if os.sched_getscheduler(tid) != policy:
                os.sched_setscheduler(tid, policy, os.sched_param(0))
            if os.getpriority(os.PRIO_PROCESS, tid) != nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            changed += 1
        except OSError:
            continue
    return changed


@contextmanager
def held_on_cpu() -> Iterator[None]:
    """For a burst of a few system calls that readers must see at one instant (a commit's
    renames): the calling thread in SCHED_FIFO 1 if it may, so that no normal thread takes its
    CPU in between (still below the control loop's FIFO 10); otherwise it starts the burst on a
    fresh time slice (sched_yield). A thread already real-time is left as it is."""
    policy = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
    before, raised = os.sched_getparam(0), False
    if policy not in (os.SCHED_FIFO, os.SCHED_RR):
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            raised = True
        except OSError:
            os.sched_yield()
    try:
        yield
    finally:
        if raised:
            os.sched_setscheduler(0, policy, before)


def leave_realtime() -> None:
    """Put the calling thread in SCHED_OTHER if it inherited SCHED_FIFO or SCHED_RR from the
    thread that started it: a control loop that was real-time before start() (its own choice
    without SCHED_RESET_ON_FORK, or a codec in it that raised it) must not pass that on to
    shmpipe's watchdog, committer or reaper, which would then compete with the loop."""
    try:
        if os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError:
        pass


def raise_control_thread(fifo_priority: int) -> tuple[int, int, os.sched_param] | None:
    """Put the calling thread in SCHED_FIFO at `fifo_priority`; returns (tid, policy, param) to
    restore it with, or None if not permitted (the thread is left as it was)."""
    tid = threading.get_native_id()
    before = (tid, os.sched_getscheduler(0), os.sched_getparam(0))
    policy = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
    try:
        os.sched_setscheduler(0, policy, os.sched_param(fifo_priority))
    except OSError:
        return None
    return before


def restore_thread(saved: tuple[int, int, os.sched_param]) -> None:
    tid, policy, param = saved
    try:
        os.sched_setscheduler(tid, policy, param)
    except OSError:
        pass  # the thread has ended
