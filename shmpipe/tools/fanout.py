"""Where per-dataset / per-source work runs: in this process, one item after another (the
default). Results come back in the items' order whatever runs them, so what is built from them
(merged stats, verdicts) does not depend on where the work ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shmpipe.tools.progress import Advance


class Fanout:
    """Runs `fn` on each item, in this process."""

    def map(self, fn: Callable[[Any], Any], items: Sequence, advance: Advance | None = None,
            weights: Sequence[int] | None = None) -> list:  # fmt: skip
        """[fn(item) for item in items]; advance(weight of the item) as each one ends."""
        results = []
        for i, item in enumerate(items):
            results.append(fn(item))
            if advance is not None:
                advance(1 if weights is None else weights[i])
        return results
