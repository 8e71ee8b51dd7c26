"""One worker, as a process (`python -m shmpipe_workers.<kind> <fd>`, see worker_package) or a
thread, and its channel.

Workers are named by a typed `WorkerRole`, never by a string a camera name could collide with.

A process worker is started fresh (not forked: nothing of the caller's script is re-imported and
no encoder thread is ever forked) with its end of a socket pair; the first message is its spec.
A thread worker runs the same loop class in this process. Either way the replies it sends wait
in `inbox` until the supervisor asks for them.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import msgspec
from multiprocess.connection import Connection, wait

from shmpipe import messages
from shmpipe.errors import WorkerError
from shmpipe.recorder import limits, reaper, worker_package


@dataclass(frozen=True)
class WorkerRole:
    """Which worker: the stats worker, or the encoder of one camera (a camera may be named
    "stats" and is still an encoder's camera)."""

    kind: Literal["encoder", "stats", "preview"]
    camera: str | None = None

    def __str__(self) -> str:
        if self.kind != "encoder":
            return f"{self.kind} worker"
        return f"encoder worker for camera {self.camera!r}"


STATS_WORKER = WorkerRole("stats")
PREVIEW_WORKER = WorkerRole("preview")


def encoder_for(camera: str) -> WorkerRole:
    return WorkerRole("encoder", camera)


Heartbeat = Callable[[WorkerRole], tuple[int, bool]]  # role -> (beat count, flushing)
NOT_READY = (-1, False)  # the beat of a worker still starting: its clock starts when it is ready


def _no_beat(role: WorkerRole) -> tuple[int, bool]:
    return NOT_READY


class WorkerHandle:
    """One running worker: its channel, its liveness, and the replies not yet consumed."""

    def __init__(self, role: WorkerRole, spec: msgspec.Struct, backend: str,
                 beat: Heartbeat = _no_beat) -> None:  # fmt: skip
        self.role, self._beat = role, beat
        ours, theirs = socket.socketpair()
        self.process: subprocess.Popen | None = None
        self.thread: threading.Thread | None = None
        if backend == "process":
            env = dict(os.environ)
            env.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only, not its banner per episode
            self.process = subprocess.Popen(
                worker_package.command(role.kind, theirs.fileno()),
                pass_fds=[theirs.fileno()],
                env=env,
                stdin=subprocess.DEVNULL,
            )
            theirs.close()
        else:
            os.environ.setdefault("SVT_LOG", "1")
            loop_class = worker_loop_class(role.kind)
            args = (loop_class, Connection(theirs.detach()), spec)
            self.thread = threading.Thread(
                target=_run_thread, args=args, name=f"shmpipe-{role}", daemon=True
            )
        self.conn = Connection(ours.detach())
        self._readable = select.poll()  # one syscall says if a reply (or EOF) waits
        self._readable.register(self.conn.fileno(), select.POLLIN)
        self.pid = self.process.pid if self.process else os.getpid()
        self.ready = False
        self.started = time.monotonic()
        self.inbox: deque[messages.FromWorker] = deque()
        if self.thread is not None:
            self.thread.start()
        else:
            self.send(spec)

    def heartbeat(self) -> tuple[int, bool]:
        """Its (beat count, flushing), read where the worker beats; NOT_READY while it starts."""
        return self._beat(self.role) if self.ready else NOT_READY

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.thread.is_alive()

    def send(self, message: msgspec.Struct) -> None:
        self.conn.send_bytes(messages.encode(message))

    def collect(self) -> None:
        """Read every reply that has arrived into the inbox (Ready only marks readiness).
        A bare poll(2) of the socket: Connection.poll builds a selector on every call."""
        while self._readable.poll(0):
            reply = messages.decode_from_worker(self.conn.recv_bytes())
            if isinstance(reply, messages.Ready):
                self.ready, self.pid = True, reply.pid
            else:
                self.inbox.append(reply)

    def kill(self) -> None:
        """Kill the process (reaped in the background: never waits on a dying process) and
        close the channel; a thread worker sees its channel close and ends."""
        if self.process is not None:
            reaper.reap(self.process)
        self.conn.close()


def await_ready(handles: list[WorkerHandle], timeout: float) -> None:
    """Wait until every worker attached to its shared memory and took what an episode needs
    (they start in parallel); a worker that could not is a WorkerError naming the limit."""
    deadline = time.monotonic() + timeout
    for handle in handles:
        while not handle.ready:
            try:
                handle.collect()
                gone = False
            except (EOFError, OSError):
                gone = True
            for reply in handle.inbox:
                if isinstance(reply, messages.WorkerFailed):
                    raise WorkerError(f"{handle.role} cannot start: {reply.error}"
                                      f"{limits.short_limits(reply.errno)}")  # fmt: skip
            if handle.ready:
                break
            if gone or not handle.alive() or time.monotonic() > deadline:
                raise WorkerError(f"{handle.role} did not start")
            wait([handle.conn], 0.1)


def stop_workers(handles: list[WorkerHandle], timeout: float) -> None:
    """Send each worker Shutdown, give them `timeout` seconds together, then kill the rest."""
    for handle in handles:
        try:
            handle.send(messages.Shutdown())
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    for handle in handles:
        left = max(0.0, deadline - time.monotonic())
        if handle.process is not None:
            try:
                handle.process.wait(left)
            except subprocess.TimeoutExpired:
                pass
        else:
            handle.thread.join(left)
        handle.kill()


def worker_loop_class(kind: str) -> type:
    """The loop a thread worker of `kind` runs (what its worker process runs)."""
    loops = {"encoder": "EncoderLoop", "stats": "StatsLoop", "preview": "PreviewLoop"}
    return getattr(worker_package.module(kind), loops[kind])


def _run_thread(make_loop, conn: Connection, spec) -> None:
    owner_gone = worker_package.module("base").OwnerGone
    try:
        prio = spec.video.priority if isinstance(spec, messages.EncoderSpec) else spec.priority
        make_loop(conn, spec).run(prio)
    except owner_gone:
        pass
    except Exception:
        traceback.print_exc()  # as a worker process would; the supervisor restarts it
    finally:
        conn.close()
