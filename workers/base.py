"""What every worker shares: its control channel, the loop that sleeps on a doorbell, and the
process entry point that cleans up after an owner that died.

A worker learns that its owner is gone when the channel reaches end-of-file (the kernel closes
the owner's end of the socket even on SIGKILL). It then checks the owner's lock (shmpipe.ipc.names):
if the owner is really dead, it removes the owner's shared-memory objects and exits.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time

from multiprocess.connection import Connection

from shmpipe import messages
from shmpipe.ipc import names
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.ring import RingReader
from shmpipe.system import priority, realtime

IDLE_WAIT_S = 0.02
OWNER_EXIT_WAIT_S = 1.0  # after EOF: how long the owner may take to finish dying


class OwnerGone(Exception):
    """The control process closed the channel or died."""


class WorkerLoop:
    """Messages first, then the work, a heartbeat, then sleep on the doorbell unless frames
    wait. Subclasses implement `handle`, `work`, `has_unread` and may extend `close`."""

    def __init__(self, conn: Connection, doorbell: Doorbell, readers: list[RingReader]) -> None:
        self._conn = conn
        self.doorbell = doorbell
        self.readers = readers
        # Connection.poll() builds, fills and closes a selector per call (~20 us of Python);
        # asked at least once per frame, a poll object made once answers the same (see _readable)
        self._poller = select.poll()
        if conn is not None:
            self._poller.register(conn.fileno(), select.POLLIN)

    def run(self, prio: priority.EncoderPriority, whole_process: bool = False) -> None:
        """Serve until Shutdown or the owner's end. First this thread (with `whole_process`,
        every thread of the worker process) goes to `prio`, then gives up real-time
        scheduling before any codec starts a thread (shmpipe.system.realtime: a thread without
        CAP_SYS_NICE may no longer renice one that has it, hence this order)."""
        me = {threading.get_native_id()}
        priority.apply(priority.thread_ids() if whole_process else me, prio)
        realtime.forbid(whole_process)
        try:
            self.prove()
        except Exception as exc:  # a limit too short for this worker: start() names it
            code = getattr(exc, "errno", None) or 0
            self.reply(messages.WorkerFailed(take=0, error=str(exc), errno=code))
            self.close(crashed=False)
            return
        self.reply(messages.Ready(pid=os.getpid()))
        stopping: BaseException | None = None
        try:
            while True:
                for message in self.pending():
                    if isinstance(message, messages.Shutdown):
                        return
                    self.handle(message)
                self.work()
                for reader in self.readers:
                    reader.beat()
                self.sleep()
        except BaseException as exc:
            stopping = exc
            raise
        finally:
            self.close(crashed=stopping is not None and not isinstance(stopping, OwnerGone))

    def sleep(self) -> None:
        for reader in self.readers:
            reader.set_asleep(True)
        if not self.has_unread():
            self.doorbell.wait(IDLE_WAIT_S)
        for reader in self.readers:
            reader.set_asleep(False)

    def pending(self) -> list[messages.ToWorker]:
        """Every control message that has arrived, without waiting."""
        out = []
        try:
            while self._readable():
                out.append(messages.decode_to_worker(self._conn.recv_bytes()))
        except (EOFError, OSError) as exc:
            raise OwnerGone() from exc
        return out

    def messages_waiting(self) -> bool:
        """True if a control message (or the owner's end of the channel) is waiting."""
        try:
            return self._readable()
        except (EOFError, OSError):
            return True

    def _readable(self) -> bool:
        """What Connection.poll() says (a message, its end or an error waits on the socket:
        the channel keeps no bytes of its own), without its selector."""
        if self._conn is None:
            return False  # a loop driven by hand (tests): no channel, no messages
        if self._conn.closed:
            raise OSError("the control channel is closed")
        return bool(self._poller.poll(0))

    def reply(self, message) -> None:
        try:
            self._conn.send_bytes(messages.encode(message))
        except OSError as exc:
            raise OwnerGone() from exc

    def prove(self) -> None:
        """Before Ready: take once what an episode will need (threads, memory), or raise."""

    def handle(self, message: messages.ToWorker) -> None:
        raise NotImplementedError

    def work(self) -> None:
        raise NotImplementedError

    def has_unread(self) -> bool:
        raise NotImplementedError

    def close(self, crashed: bool) -> None:
        """Release shared memory. `crashed`: a bug, not a request to stop or a dead owner."""
        for reader in self.readers:
            reader.close()
        self.doorbell.close()


def main(loop_class: type[WorkerLoop]) -> None:
    """`python -m shmpipe_workers.X <fd>`: run the loop on the inherited socket; clean up if
    orphaned."""
    # Ctrl-C in the terminal reaches the whole process group; the owner decides what to do
    # and tells us over the channel, so a worker never dies mid-file from SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(socket.socket(fileno=int(sys.argv[1])).detach())
    spec = None
    orphaned = False
    try:
        spec = messages.decode_to_worker(conn.recv_bytes())
        _set_title(spec)
        loop_class(conn, spec).run(_priority_of(spec), whole_process=True)
    except (OwnerGone, EOFError, OSError):
        orphaned = True
    finally:
        if spec is not None and orphaned and _owner_died(spec.owner, OWNER_EXIT_WAIT_S):
            names.sweep_owner(spec.owner.pid, spec.owner.token)
    os._exit(0)


def _priority_of(spec) -> priority.EncoderPriority:
    return spec.video.priority if isinstance(spec, messages.EncoderSpec) else spec.priority


def _set_title(spec) -> None:
    """Show the role in `ps`: `shmpipe encoder <camera>`, `shmpipe stats` or `shmpipe preview`."""
    role = f"encoder {spec.camera}" if isinstance(spec, messages.EncoderSpec) else "stats"
    role = "preview" if isinstance(spec, messages.PreviewSpec) else role
    try:
        import setproctitle

        setproctitle.setproctitle(f"shmpipe {role}")
    except ImportError:
        pass


def _owner_died(owner: messages.Owner, within: float) -> bool:
    """True once the owner's lock is free; False if it is still held after `within` seconds
    (a live owner closed the channel itself and removes its own objects)."""
    deadline = time.monotonic() + within
    while names.owner_alive(owner.pid, owner.token):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
