"""Real cgroups for tests: a pids or memory limit on chosen processes (root only).

Works on cgroup v2 (/sys/fs/cgroup with cgroup.controllers) and on v1 hierarchies
(/sys/fs/cgroup/<controller>). Processes are moved back to the parent group before the group is
removed, so a test leaves no cgroup behind."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")


def controller_root(controller: str) -> Path | None:
    """Where groups with `controller` can be made here, or None."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        enabled = (CGROUP_ROOT / "cgroup.subtree_control").read_text().split()
        return CGROUP_ROOT if controller in enabled else None
    v1 = CGROUP_ROOT / controller
    return v1 if (v1 / "cgroup.procs").exists() else None


@contextlib.contextmanager
def cgroup(controller: str):
    """A fresh group of `controller` (skips the test where none can be made); yields its path."""
    root = controller_root(controller)
    if root is None or os.geteuid() != 0:
        pytest.skip(f"needs root and a writable {controller} cgroup under {CGROUP_ROOT}")
    group = root / f"shmpipe-test-{secrets.token_hex(4)}"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot make a {controller} cgroup here: {exc}")
    try:
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (root / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            group.rmdir()


def move(group: Path, pid: int) -> None:
    (group / "cgroup.procs").write_text(str(pid))
