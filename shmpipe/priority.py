"""Keep encoder threads below the control loop.

Run as root, SVT-AV1 makes its threads SCHED_FIFO priority 99; three such encoders on two cores
made a 30 Hz loop in another process wake up to 893 ms late (FIELD-NOTES). After an encoder has
opened, its threads are put in SCHED_IDLE (nice 19 too, in case the policy is refused): they
then run only on CPU time the control loop does not want, which keeps the encoders' throughput
(the loop sleeps most of each period) and gives the control loop its period back. A woken worker
can then never preempt the control loop either, which SCHED_OTHER at nice 19 still did.
"""

from __future__ import annotations

import os

LOW_NICE = 19


def thread_ids() -> set[int]:
    """Kernel thread ids of this process."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except FileNotFoundError:
        return set()


def demote(tids: set[int], nice: int = LOW_NICE) -> int:
    """Put each thread in SCHED_IDLE at `nice`; returns how many were changed.

    Threads that exited meanwhile, or that we may not change, are skipped: a missed demotion
    costs latency, not correctness."""
    changed = 0
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            if os.sched_getscheduler(tid) != os.SCHED_IDLE:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            changed += 1
        except (ProcessLookupError, PermissionError, OSError):
            continue
    return changed
