"""The worker's end of its control channel: messages in, replies out, and the owner's death.

A worker learns that its owner died when the channel reaches end-of-file (the kernel closes the
owner's end of the socket), which happens at once even on SIGKILL; it then removes the owner's
shared-memory objects and exits, so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

from multiprocess.connection import Connection

from shmpipe import messages, names, priority

OWNER_GRACE_S = 1.0


class OwnerGone(Exception):
    """The control process closed the channel or died."""


class WorkerChannel:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def pending(self) -> list[messages.ToWorker]:
        """Every control message that has arrived, without waiting."""
        out = []
        try:
            while self._conn.poll():
                out.append(messages.decode_to_worker(self._conn.recv_bytes()))
        except (EOFError, OSError) as exc:
            raise OwnerGone() from exc
        return out

    def receive(self, timeout: float | None = None) -> messages.ToWorker:
        try:
            if not self._conn.poll(timeout):
                raise TimeoutError("no control message")
            return messages.decode_to_worker(self._conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise OwnerGone() from exc

    def reply(self, message) -> None:
        try:
            self._conn.send_bytes(messages.encode(message))
        except OSError as exc:
            raise OwnerGone() from exc


def lower_own_priority() -> None:
    """Run this worker thread (and the threads it starts later) at the lowest CPU priority."""
    priority.demote({threading.get_native_id()})


def main(run) -> None:
    """`python -m workers.X <fd>`: run the worker on the inherited socket, clean up if orphaned."""
    # Ctrl-C in the terminal reaches the whole process group; the owner decides what to do
    # and tells us over the channel, so a worker never dies mid-file from SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd = int(sys.argv[1])
    conn = Connection(socket.socket(fileno=fd).detach())
    spec = None
    try:
        spec = messages.decode_to_worker(conn.recv_bytes())
        run(conn, spec)
    except (OwnerGone, EOFError, OSError):
        pass
    finally:
        if spec is not None and _owner_dies(spec.owner_pid, OWNER_GRACE_S):
            names.sweep_owner(spec.owner_pid, spec.owner_token)
    os._exit(0)


def _owner_dies(pid: int, within: float) -> bool:
    """True once `pid` is dead; False if it still lives after `within` seconds (then the owner
    closed the channel itself and removes its own objects)."""
    deadline = time.monotonic() + within
    while names.pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
