"""Workers give up real-time scheduling before they open a codec, so that none of their threads
can ever preempt the control loop.

As root, SVT-AV1 puts every thread it starts in SCHED_FIFO 99, from inside the thread, at times
of its own choosing (FIELD-NOTES). Demoting them afterwards (shmpipe.system.priority.apply) leaves
windows: a worker's codec probe at start() left its main thread in FIFO 99 until its first frame,
and the codec's threads that the first frame starts inherit it. On two cores, two such threads
keep a control loop in SCHED_FIFO 10 off the CPU. A thread without CAP_SYS_NICE (capabilities are
per thread on Linux, inherited by the threads it starts) and, for a worker process, with an
RLIMIT_RTPRIO of 0 cannot enter real-time scheduling at all: SVT-AV1 then logs that it could not
set a thread priority and encodes as it does for a user who is not root.
"""

from __future__ import annotations

import ctypes
import os
import resource

CAP_SYS_NICE = 23
_CAPABILITY_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]  # fmt: skip


def forbid(whole_process: bool) -> bool:
    """Take CAP_SYS_NICE from the calling thread (and the threads it will start); with
    `whole_process` (a worker process) also lower RLIMIT_RTPRIO to 0. True if the thread can no
    longer enter real-time scheduling; best effort otherwise (no libc, another OS)."""
    if whole_process:
        try:
            resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
        except (OSError, ValueError, AttributeError):
            pass
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        header, data = _Header(_CAPABILITY_VERSION_3, 0), (_Data * 2)()
        if libc.capget(ctypes.byref(header), data) != 0:
            return False
        mask = ~(1 << CAP_SYS_NICE) & 0xFFFFFFFF
        for field in ("effective", "permitted", "inheritable"):
            setattr(data[0], field, getattr(data[0], field) & mask)
        if libc.capset(ctypes.byref(header), data) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return not allowed()


def allowed() -> bool:
    """Whether the calling thread may enter SCHED_FIFO (tried, and undone at once)."""
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError:
        return False
    os.sched_setscheduler(0, *before)
    return True
