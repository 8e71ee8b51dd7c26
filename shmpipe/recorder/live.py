"""The takes the workers know of at one time: the open one, and those whose commit runs in the
background (finish_episode(wait=False), shmpipe.recorder.committer).

A worker's reply is shown to every live take (each keeps only what concerns its own number), and
a replaced worker is told what each of them asks to replay, oldest first, so an encoder killed
while it still encodes episode N, with episode N+1 open, takes up both.
"""

from __future__ import annotations

from shmpipe.recorder.take import LIVE, Take
from shmpipe.recorder.worker_handle import WorkerRole


class LiveTakes:
    """`current`: the take add_frame uses; `finishing`: takes committed in the background, oldest
    first (added by the loop thread, removed by the committer, both under the session lock)."""

    def __init__(self) -> None:
        self.current: Take | None = None
        self.finishing: list[Take] = []

    def takes(self) -> list[Take]:
        current = [] if self.current is None else [self.current]
        return [*self.finishing, *current]

    def note(self, role: WorkerRole, reply: object) -> None:
        for take in self.takes():
            take.note(role, reply)

    def replay(self, role: WorkerRole) -> list:
        return [message for take in self.takes() for message in take.replay(role)]

    def live_numbers(self) -> set[int]:
        return {take.number for take in self.takes() if take.state in LIVE}
