"""Objects in /dev/shm that are not ours (another user's, or names squatted by anyone) neither
stop nor fool start(): the sweep of dead owners leaves them alone."""

from __future__ import annotations

import os

import posix_ipc
import pytest

from shmpipe import Pipeline
from shmpipe.ipc import names

CAMS = {"front": (48, 64, 3)}
NOBODY = 65534


def test_a_squatted_directory_with_a_lock_name_does_not_stop_start(tmp_path):
    squat = names.SHM_DIR / "shmpipe_1_aa_owner"  # any local user can make this
    squat.mkdir()
    link = names.SHM_DIR / "shmpipe_2_bb_owner"
    link.symlink_to(tmp_path / "victim")
    (tmp_path / "victim").write_text("keep me")
    try:
        names.sweep_dead_owners()  # raised IsADirectoryError
        with Pipeline(tmp_path / "ds", fps=30, cameras=CAMS, backend="thread") as pipe:
            pipe.add_frame({"front": bytes_frame()}, task="t")
            pipe.finish_episode()
        assert squat.is_dir() and link.is_symlink(), "not ours: left alone"
        assert (tmp_path / "victim").read_text() == "keep me"
    finally:
        squat.rmdir()
        link.unlink()


def test_another_users_dead_objects_do_not_stop_the_sweep_of_start(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user (seteuid)")
    # a root recorder killed with SIGKILL leaves its 0600 lock and segments behind
    dead_pid, token = 2**22 + 17, "0badc0de"
    lock = names.SHM_DIR / names.object_name(dead_pid, token, names.OWNER_LOCK).lstrip("/")
    lock.touch(mode=0o600)
    segment = names.object_name(dead_pid, token, "ring0")
    posix_ipc.SharedMemory(segment, posix_ipc.O_CREX, mode=0o600, size=4096).close_fd()
    try:
        os.seteuid(NOBODY)  # what start() of user nobody does first (it raised PermissionError)
        try:
            names.sweep_dead_owners()
            assert names.owner_alive(dead_pid, token), "not ours to judge: counted alive"
        finally:
            os.seteuid(0)
        assert lock.exists(), "another user's objects are not ours to remove"
        assert not names.owner_alive(dead_pid, token), "for root, its owner, it is dead"
        names.sweep_dead_owners()
        assert not lock.exists() and segment.lstrip("/") not in os.listdir(names.SHM_DIR)
    finally:
        names.sweep_owner(dead_pid, token)


def bytes_frame():
    import numpy as np

    return np.zeros((48, 64, 3), np.uint8)
