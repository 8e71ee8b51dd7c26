"""Starting, talking to and stopping workers, as processes or as threads (`SHMPIPE_BACKEND`).

Either way a worker runs the same loop (`workers.<kind>.run`) on one end of a socket pair that
carries msgspec control messages. Processes are started as `python -m workers.<kind> <fd>`, not
forked or spawned by multiprocessing: nothing of the caller's script is re-imported and no encoder
thread is ever forked. A killed owner closes its end of the socket, which is how workers notice.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import msgspec
from multiprocess.connection import Connection, wait

from shmpipe import messages

READY_TIMEOUT_S = 60.0
_ROOT = str(Path(importlib.import_module("workers").__file__).resolve().parent.parent)


class WorkerHandle:
    """One running worker: its control connection and how to tell whether it lives."""

    def __init__(self, kind: str, label: str, conn: Connection, process=None, thread=None):
        self.kind = kind
        self.label = label
        self.conn = conn
        self.process: subprocess.Popen | None = process
        self.thread: threading.Thread | None = thread
        self.pid = process.pid if process is not None else os.getpid()

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.thread is not None and self.thread.is_alive()

    def send(self, message: msgspec.Struct) -> None:
        self.conn.send_bytes(messages.encode(message))

    def receive(self, timeout: float) -> messages.FromWorker | None:
        if not self.conn.poll(timeout):
            return None
        return messages.decode_from_worker(self.conn.recv_bytes())

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to shut down; kill it if it does not go within `timeout`."""
        try:
            self.send(messages.Shutdown())
        except OSError:
            pass
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.thread is not None:
            self.thread.join(timeout)
        self.conn.close()


def start_worker(kind: str, label: str, spec: msgspec.Struct, backend: str) -> WorkerHandle:
    """Start worker `kind` ("encoder" or "stats") and hand it `spec`; then call `await_ready`.

    Starting every worker first and waiting afterwards lets their interpreters start in parallel."""
    ours, theirs = socket.socketpair()
    if backend == "process":
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
        env.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only, not its banner per episode
        process = subprocess.Popen(
            [sys.executable, "-m", f"workers.{kind}", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        handle = WorkerHandle(kind, label, Connection(ours.detach()), process=process)
    else:
        os.environ.setdefault("SVT_LOG", "1")
        worker_conn = Connection(theirs.detach())
        run = importlib.import_module(f"workers.{kind}").run
        thread = threading.Thread(
            target=_run_thread, args=(run, worker_conn, spec), name=f"shmpipe-{label}", daemon=True
        )
        handle = WorkerHandle(kind, label, Connection(ours.detach()), thread=thread)
        thread.start()
    if backend == "process":
        handle.send(spec)
    return handle


def _run_thread(run, conn: Connection, spec) -> None:
    from workers.channel import OwnerGone

    try:
        run(conn, spec)
    except OwnerGone:
        pass
    except Exception:
        # as a worker process would: say why on stderr and die; the pool restarts the worker
        traceback.print_exc()
    finally:
        conn.close()


def await_ready(handle: WorkerHandle) -> None:
    """Wait for the worker's Ready (it attached to its shared memory); RuntimeError if it died."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            reply = handle.receive(0.1)
        except (EOFError, OSError):
            reply = None
        if isinstance(reply, messages.Ready):
            handle.pid = reply.pid
            return
        if not handle.alive():
            break
    handle.stop(1.0)
    raise RuntimeError(f"{handle.kind} worker for {handle.label} did not start")


def wait_any(handles: list[WorkerHandle], timeout: float) -> list[WorkerHandle]:
    """Handles whose connection has a reply (or hung up) within `timeout` seconds."""
    by_conn = {h.conn: h for h in handles}
    return [by_conn[c] for c in wait(list(by_conn), timeout)]
