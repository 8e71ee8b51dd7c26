"""Worker failures of the open take, seen the moment a worker reports them.

An encoder that cannot open its codec or write its file sends `WorkerFailed` at once. The
supervisor notes it here on its next look (every add_frame looks at most every 0.2 s), so the
failure is logged, shown by status(), and raised by the next add_frame: the caller can cancel the
episode then, instead of learning at finish that every frame since was lost.
"""

from __future__ import annotations

import errno
import logging

from shmpipe import messages
from shmpipe.errors import DatasetError, ShmpipeError, WorkerError
from shmpipe.recorder.worker_handle import WorkerRole

log = logging.getLogger("shmpipe")
# the disk refused a write: a DatasetError (the dataset's file system), not a worker's bug
DISK_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG, errno.EACCES, errno.EPERM}
)


def failure_error(role: WorkerRole, failed: messages.WorkerFailed, hint: str = "") -> ShmpipeError:
    """The exception for a worker's failure: DatasetError if the disk refused, else WorkerError."""
    kind = DatasetError if failed.errno in DISK_ERRNOS else WorkerError
    return kind(f"{role} failed: {failed.error}{hint}")


class TakeFailures:
    """The first failure of each worker in the open take (cleared when a take opens or ends)."""

    def __init__(self) -> None:
        self.by_role: dict[WorkerRole, messages.WorkerFailed] = {}

    def note(self, role: WorkerRole, reply: object, take: int) -> None:
        if not isinstance(reply, messages.WorkerFailed) or reply.take != take:
            return
        if role not in self.by_role:
            self.by_role[role] = reply
            log.error("%s failed: %s; the open episode cannot be saved (cancel it)", role,
                      reply.error)  # fmt: skip

    def message_of(self, role: WorkerRole) -> str:
        failed = self.by_role.get(role)
        return "" if failed is None else failed.error

    def error(self, hint: str = "") -> ShmpipeError | None:
        """The first failure as an exception (None if every worker is fine)."""
        for role, failed in self.by_role.items():
            return failure_error(role, failed, hint)
        return None

    def refused_frame(self, episode: int) -> ShmpipeError:
        """What add_frame raises while the open episode has a failure: the frame is not added."""
        return self.error(
            f"; episode {episode} cannot be saved and the frame was not added: call "
            "cancel_episode() (finish_episode() raises this and discards it)"
        )

    def clear(self) -> None:
        self.by_role.clear()
