"""Object names, the owner lock that proves an owner alive, and the sweep of dead owners."""

from __future__ import annotations

import os
import subprocess
import sys

import posix_ipc
import pytest

from shmpipe.ipc import names
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.segment import Segment
from tests.helpers.paths import REPO
from tests.helpers.processes import stop_process


class Group:
    """One owner group's objects: a segment, a doorbell (semaphore) and, if `locked`, its lock."""

    def __init__(self, locked: bool) -> None:
        self.pid, self.token = os.getpid(), names.new_token()
        self.lock = names.OwnerLock(self.pid, self.token) if locked else None
        self.segment = Segment.create(self.name("ring0"), 4096)
        self.bell = Doorbell.create(self.name("bell0"))

    def name(self, what: str) -> str:
        return names.object_name(self.pid, self.token, what)

    def entries(self) -> list[str]:
        prefix = f"{names.PREFIX}_{self.pid}_{self.token}_"
        return [e for e in names.list_objects() if e.removeprefix("sem.").startswith(prefix)]

    def close(self) -> None:
        for thing in (self.segment, self.bell):
            thing.close()
            thing.unlink()
        if self.lock is not None:
            self.lock.release()


@pytest.fixture
def groups():
    made: list[Group] = []

    def make(locked: bool) -> Group:
        made.append(Group(locked))
        return made[-1]

    yield make
    for group in made:
        group.close()


def test_object_names_carry_the_prefix_the_owner_pid_and_a_token():
    token = names.new_token()
    name = names.object_name(4242, token, "ring0")
    assert name == f"/shmpipe_4242_{token}_ring0"
    assert names.owner_pid(name.lstrip("/")) == 4242
    assert names.owner_pid("sem." + name.lstrip("/")) == 4242
    assert names.owner_pid("other_4242_abc_ring0") is None
    assert token != names.new_token()


def test_every_object_of_a_group_is_listed_under_its_owner(groups):
    group = groups(locked=True)
    assert group.entries() == sorted(
        [f"sem.{group.name('bell0')[1:]}", group.name("owner")[1:], group.name("ring0")[1:]]
    )
    assert {names.owner_pid(e) for e in group.entries()} == {os.getpid()}


def test_owner_is_alive_while_its_lock_is_held_and_not_after_release():
    pid, token = os.getpid(), names.new_token()
    assert not names.owner_alive(pid, token)
    lock = names.OwnerLock(pid, token)
    try:
        assert names.owner_alive(pid, token)
        assert names.owner_alive(pid, token), "checking must not take the lock away"
    finally:
        lock.release()
    assert not names.owner_alive(pid, token)
    assert not lock.path.exists()


def test_a_lock_file_nobody_holds_means_a_dead_owner():
    pid, token = os.getpid(), names.new_token()
    path = names.SHM_DIR / names.object_name(pid, token, names.OWNER_LOCK).lstrip("/")
    path.touch()
    try:
        assert not names.owner_alive(pid, token)
    finally:
        path.unlink()


HOLDER = """
import os, sys
from shmpipe.ipc import names
token = names.new_token()
lock = names.OwnerLock(os.getpid(), token)
print(token, flush=True)
sys.stdin.read()
"""


def test_owner_alive_follows_the_lock_of_another_process_until_it_is_killed():
    child = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        token = child.stdout.readline().strip()
        assert names.owner_alive(child.pid, token)
        child.kill()
        child.wait()
        lock = names.SHM_DIR / names.object_name(child.pid, token, names.OWNER_LOCK).lstrip("/")
        assert lock.exists(), "a killed owner leaves its lock file"
        assert not names.owner_alive(child.pid, token), "the kernel dropped the flock"
        assert names.sweep_owner(child.pid, token) == 1
        assert not lock.exists()
    finally:
        stop_process(child)


def test_sweep_owner_removes_that_groups_objects_only_its_lock_last(groups):
    doomed, kept = groups(locked=True), groups(locked=True)
    assert names.sweep_owner(doomed.pid, doomed.token) == 3
    assert doomed.entries() == []
    assert len(kept.entries()) == 3
    assert names.owner_alive(kept.pid, kept.token)


def test_sweep_dead_owners_keeps_live_groups_and_removes_lockless_ones(groups):
    live, dead = groups(locked=True), groups(locked=False)
    assert len(dead.entries()) == 2
    assert names.sweep_dead_owners() >= 2
    assert dead.entries() == []
    assert len(live.entries()) == 3


def test_unlink_quietly_removes_a_name_and_ignores_one_already_gone(shm_name):
    segment, semaphore = shm_name("seg"), shm_name("sem")
    posix_ipc.SharedMemory(segment, posix_ipc.O_CREX, size=4096).close_fd()
    posix_ipc.Semaphore(semaphore, posix_ipc.O_CREX).close()
    for _ in range(2):  # the second time both are gone: no error
        names.unlink_quietly(posix_ipc.unlink_shared_memory, segment)
        names.unlink_quietly(posix_ipc.unlink_semaphore, semaphore)
    with pytest.raises(posix_ipc.ExistentialError):
        posix_ipc.SharedMemory(segment)
    with pytest.raises(posix_ipc.ExistentialError):
        posix_ipc.Semaphore(semaphore)


def test_pid_alive_is_false_for_a_zombie_and_true_for_us():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
        assert not names.pid_alive(child.pid)
    finally:
        child.wait()
    assert names.pid_alive(os.getpid())
