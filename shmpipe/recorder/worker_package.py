"""Which package holds the worker entry points, and the command that starts a worker process.

The checkout keeps them in its top-level `workers/` folder; an install puts that folder into
site-packages as `shmpipe_workers` (package-dir in pyproject.toml), so it can neither shadow nor
be shadowed by another project's `workers`. A worker process is started by module name,
`python -m <package>.<kind>`, with the caller's environment as it is: it finds the package the way
the control process found shmpipe (site-packages, an editable install's finder, or, run from a
checkout, the current folder or the caller's own PYTHONPATH). The recorder injects no path.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import shmpipe
from shmpipe.errors import WorkerError

INSTALLED = "shmpipe_workers"
CHECKOUT = "workers"


@functools.cache
def name() -> str:
    """The worker package that belongs to this shmpipe: the one beside it (in the same
    site-packages, or the same checkout). A checkout on sys.path keeps the name its tests import,
    `workers`; an install's `shmpipe_workers` wins over any other project's `workers`."""
    home = Path(shmpipe.__file__).resolve().parent.parent
    found = {package: _folder(package) for package in (CHECKOUT, INSTALLED)}
    beside = [package for package, folder in found.items() if folder and folder.parent == home]
    if not beside:
        raise WorkerError(f"shmpipe's worker package ({INSTALLED}) is not installed beside "
                          f"shmpipe in {home}: reinstall shmpipe")  # fmt: skip
    if len(beside) == 2 and found[CHECKOUT] != found[INSTALLED]:
        return INSTALLED  # another project's `workers` sits in the same site-packages
    return beside[0]


def module(kind: str) -> ModuleType:
    """A worker module (`base`, `encoder`, `stats`, `preview`) of this shmpipe's package."""
    return importlib.import_module(f"{name()}.{kind}")


def command(kind: str, fd: int) -> list[str]:
    """The command line of a worker process that talks over the inherited socket `fd`."""
    return [sys.executable, "-m", f"{name()}.{kind}", str(fd)]


def _folder(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent
