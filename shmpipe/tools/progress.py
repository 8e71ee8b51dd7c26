"""Progress of long work (verify, pack, merge, stats): bars with counts and an ETA on a
terminal, nothing at all when stderr is piped or the command prints JSON.

The work asks for a bar per phase (`phase(description, total)`) and calls the `advance(n)` it
gets as it goes; it never knows whether anything is shown. NO_PROGRESS shows nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Advance = Callable[[int], None]


def _ignore(n: int = 1) -> None:
    pass


class ProgressBar:
    """rich's bars on stderr (description, bar, done/total, elapsed, ETA), or nothing.
    enabled=None: shown only if stderr is a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich import progress as rich
            from rich.console import Console

            self._bar = rich.Progress(
                rich.TextColumn("{task.description}"), rich.BarColumn(),
                rich.MofNCompleteColumn(), rich.TimeElapsedColumn(), rich.TextColumn("ETA"),
                rich.TimeRemainingColumn(), console=Console(stderr=True))  # fmt: skip
            self._bar.start()
        return self

    def phase(self, description: str, total: int) -> Advance:
        """A new bar of `total` steps; returns its advance(n)."""
        if self._bar is None:
            return _ignore
        task = self._bar.add_task(description, total=total)
        return lambda n=1: self._bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


NO_PROGRESS = ProgressBar(enabled=False)
