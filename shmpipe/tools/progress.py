"""Progress of long work (verify, pack, merge, stats): a bar with counts and an ETA on a
terminal, nothing at all when stderr is piped or the command prints JSON.

The work calls `advance(n)` as it goes; it never knows whether a bar is shown.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Advance = Callable[[int], None]


def _ignore(n: int = 1) -> None:
    pass


class ProgressBar:
    """rich's bar on stderr (description, bar, done/total, elapsed, remaining), or nothing."""

    def __init__(self, description: str, total: int, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.description, self.total = description, total
        self._bar = None
        self._task = None

    def __enter__(self) -> Advance:
        if not self.enabled:
            return _ignore
        from rich import progress as rich
        from rich.console import Console

        self._bar = rich.Progress(
            rich.TextColumn("{task.description}"), rich.BarColumn(), rich.MofNCompleteColumn(),
            rich.TimeElapsedColumn(), rich.TextColumn("ETA"), rich.TimeRemainingColumn(),
            console=Console(stderr=True), transient=True)  # fmt: skip
        self._bar.start()
        self._task = self._bar.add_task(self.description, total=self.total)
        return self.advance

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
