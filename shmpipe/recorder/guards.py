"""Guards around Pipeline calls: one call at a time, only in the process that started it, and
Ctrl-C held back across the few statements that must happen together.

add_frame makes a frame visible in every camera's ring and appends its row; a KeyboardInterrupt
between two of those would leave one camera a frame ahead of the rows. Python runs signal
handlers only in the main thread, between bytecodes, so for those statements the main thread's
SIGINT handler just records the signal, and the original handler runs right after them.
"""

from __future__ import annotations

# signal's C module: signal.signal/getsignal wrap every call in enum conversions (~15 us each)
import _signal
import os
import threading
from contextlib import contextmanager

from shmpipe.errors import UsageError

_forks = [0]  # bumped in every forked child: a Pipeline belongs to the process that started it
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class CallGuard:
    """Refuses calls in the wrong state, from a forked child, or from two threads at once."""

    def __init__(self) -> None:
        self.state = "new"  # new -> started -> closed
        self._mutex = threading.Lock()  # held only to test-and-set `_caller`
        self._caller: int | None = None  # the thread inside a call
        self._generation = _forks[0]

    def started(self) -> None:
        self.state, self._generation = "started", _forks[0]

    def in_owner(self) -> bool:
        """False in a forked child of the process that started the pipeline."""
        return self._generation == _forks[0]

    @contextmanager
    def call(self, what: str):
        if self.state != "started":
            hint = "call start() first" if self.state == "new" else "the pipeline is closed"
            raise UsageError(f"Pipeline.{what}(): {hint}")
        if not self.in_owner():
            raise UsageError(f"Pipeline.{what}(): this pipeline belongs to the process that "
                             "started it, not to a forked child; start a new one here")  # fmt: skip
        me = threading.get_ident()
        with self._mutex:
            # a mark of our own thread is stale: a call of ours interrupted before it could clear it
            if self._caller not in (None, me):
                raise UsageError(f"Pipeline.{what}(): another call is running in another "
                                 "thread; use a Pipeline from one thread at a time")  # fmt: skip
            self._caller = me
        try:
            yield
        finally:
            self._caller = None


class InterruptsDeferred:
    """`with InterruptsDeferred(): ...` — a SIGINT inside is delivered at the end of the block."""

    __slots__ = ("_previous", "_pending")

    def __enter__(self) -> InterruptsDeferred:
        self._previous = self._pending = None
        if threading.current_thread() is threading.main_thread():
            previous = _signal.getsignal(_signal.SIGINT)
            stale = getattr(previous, "__self__", None)
            if isinstance(stale, InterruptsDeferred):  # one left installed by an interruption
                previous = stale._previous
            if callable(previous):
                self._previous = previous
                _signal.signal(_signal.SIGINT, self._hold)
        return self

    def _hold(self, signum, frame) -> None:
        self._pending = (signum, frame)

    def __exit__(self, *exc_info) -> None:
        if self._previous is None:
            return
        _signal.signal(_signal.SIGINT, self._previous)
        if self._pending is not None:
            self._previous(*self._pending)
