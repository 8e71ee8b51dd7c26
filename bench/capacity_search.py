"""Where a system's ceiling lies: double the stream count until it falls behind, then bisect.

A fixed range (the bench once stopped at 6) hides the ceiling of whatever keeps up at its top;
doubling finds an upper bound in log2(ceiling) steps, bisection the edge in as many again.
"""

from __future__ import annotations


class CeilingSearch:
    """The next stream count to run, from the verdicts so far (kept up or fell behind)."""

    def __init__(self, max_streams: int = 64) -> None:
        self.max_streams = max_streams
        self.kept = 0  # the most streams kept up so far
        self.grew: int | None = None  # the fewest streams that fell behind so far
        self.failed = False

    def next(self) -> int | None:
        """The stream count to run next, or None when the edge is found (or the stop reached)."""
        if self.failed:
            return None
        if self.grew is None:
            return (
                min(self.max_streams, max(1, 2 * self.kept))
                if self.kept < self.max_streams
                else None
            )
        if self.grew - self.kept <= 1:
            return None
        return (self.kept + self.grew) // 2

    def record(self, streams: int, grew: bool) -> None:
        if grew:
            self.grew = streams if self.grew is None else min(self.grew, streams)
        else:
            self.kept = max(self.kept, streams)

    def fail(self) -> None:
        """No run finished at the last count: stop searching."""
        self.failed = True
