"""Ctrl-C held back across the few statements that must happen together.

add_frame makes a frame visible in every camera's ring and appends its row; a KeyboardInterrupt
between two of those would leave one camera a frame ahead of the rows. Python runs signal
handlers only in the main thread, between bytecodes, so for those statements the main thread's
SIGINT handler just records the signal, and the original handler runs right after them.
"""

from __future__ import annotations

import signal
import threading


class InterruptsDeferred:
    """`with InterruptsDeferred(): ...` — a SIGINT inside is delivered at the end of the block."""

    __slots__ = ("_previous", "_pending")

    def __enter__(self) -> InterruptsDeferred:
        self._previous = self._pending = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum, frame) -> None:
        self._pending = (signum, frame)

    def __exit__(self, *exc_info) -> None:
        if self._previous is None:
            return
        signal.signal(signal.SIGINT, self._previous)
        if self._pending is not None:
            self._previous(*self._pending)
