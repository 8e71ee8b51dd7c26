"""Guards around Pipeline calls: one call at a time, only in the process that started it, and
signal handlers held back across the few statements that must happen together.

add_frame makes a frame visible in every camera's ring and appends its row; an exception raised
by a signal handler (Ctrl-C, a SIGTERM handler calling sys.exit, a SIGALRM timeout) between two
of those would leave one camera a frame ahead of the rows. So for those statements every
Python handler just records its signal, and the signal is delivered again right after them.
"""

from __future__ import annotations

# signal's C module: signal.signal/getsignal wrap every call in enum conversions (~15 us each)
import _signal
import enum
import os
import threading
from contextlib import contextmanager
from itertools import compress

from shmpipe.errors import UsageError

_forks = [0]  # bumped in every forked child: a Pipeline belongs to the process that started it
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class PipelineState(enum.Enum):
    """A Pipeline's life: NEW -> STARTED -> CLOSED (an episode's is shmpipe.recorder.take's)."""

    NEW = "new"
    STARTED = "started"
    CLOSED = "closed"


NEW, STARTED, CLOSED = PipelineState.NEW, PipelineState.STARTED, PipelineState.CLOSED


class CallGuard:
    """Refuses calls in the wrong state, from a forked child, or from two threads at once."""

    def __init__(self) -> None:
        self.state = NEW
        self._mutex = threading.Lock()  # held only to test-and-set `_caller`
        self._caller: int | None = None  # the thread inside a call
        self._generation = _forks[0]

    def check_new(self) -> None:
        """start() makes a pipeline run once: UsageError if it was started or closed."""
        if self.state is not NEW:
            state = "already started" if self.state is STARTED else "closed"
            raise UsageError(f"Pipeline.start(): the pipeline is {state}; make a new one")

    def started(self) -> None:
        if self.state is not NEW:
            raise UsageError(f"Pipeline.start(): goes from NEW to STARTED, but it is "
                             f"{self.state.name}")  # fmt: skip
        self.state, self._generation = STARTED, _forks[0]

    def closed(self) -> None:
        """Any state -> CLOSED (closing twice is harmless)."""
        self.state = CLOSED

    def in_owner(self) -> bool:
        """False in a forked child of the process that started the pipeline."""
        return self._generation == _forks[0]

    def enter(self, what: str) -> None:
        """Begin a call (UsageError if refused); `leave()` ends it. add_frame pairs them in a
        try/finally: no generator or context-manager object on its hot path."""
        if self.state is not STARTED or self._generation != _forks[0]:
            self._refuse(what)
        me = _get_ident()
        with self._mutex:
            # a mark of our own thread is stale: a call of ours interrupted before it could clear it
            if self._caller is not None and self._caller != me:
                raise UsageError(f"Pipeline.{what}(): another call is running in another "
                                 "thread; use a Pipeline from one thread at a time")  # fmt: skip
            self._caller = me

    def leave(self) -> None:
        self._caller = None

    def _refuse(self, what: str) -> None:
        if self.state is not STARTED:
            hint = "call start() first" if self.state is NEW else "the pipeline is closed"
            raise UsageError(f"Pipeline.{what}(): {hint}")
        raise UsageError(f"Pipeline.{what}(): this pipeline belongs to the process that "
                         "started it, not to a forked child; start a new one here")  # fmt: skip

    @contextmanager
    def call(self, what: str):
        self.enter(what)
        try:
            yield
        finally:
            self.leave()


class SignalsDeferred:
    """`with SignalsDeferred(): ...` — every signal with a Python handler that arrives inside the
    block (SIGINT's KeyboardInterrupt, a SIGTERM handler calling sys.exit, a SIGALRM timeout)
    is delivered again, to its own handler, right after the block.

    Python runs handlers only in the main thread, between bytecodes, wherever in the process
    the signal arrived, so masking signals (pthread_sigmask) would not do: each Python handler
    is swapped for one that records the signal, and `signal.raise_signal` re-delivers it once
    the originals are back. A handler left behind by an interrupted block is recognised and
    replaced by the original it stood in for."""

    __slots__ = ("_held", "_pending", "_holder")

    def __init__(self) -> None:
        self._held: list[tuple[int, object]] = []  # (signal, its own handler) while inside
        self._pending: list[int] = []
        self._holder = self._hold  # one bound method for every block: add_frame reuses us

    def __enter__(self) -> SignalsDeferred:
        if _get_ident() != _MAIN_THREAD_ID:
            return self
        held: list[tuple[int, object]] = []
        try:
            # C-level scan of every signal's handler (a Python loop over 60 costs ~3x more)
            for signum in compress(_CATCHABLE, map(callable, map(_getsignal, _CATCHABLE))):
                handler = _getsignal(signum)
                stale = getattr(handler, "__self__", None)
                if isinstance(stale, SignalsDeferred):  # left by an interrupted block
                    handler = dict(stale._held).get(signum, _signal.SIG_DFL)
                    if not callable(handler):
                        _signal.signal(signum, handler)
                        continue
                held.append((signum, handler))
                _signal.signal(signum, self._holder)
        except BaseException:
            self._held = held
            self.__exit__()
            raise
        self._held = held
        return self

    def _hold(self, signum, frame) -> None:
        self._pending.append(signum)

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._held:
            _signal.signal(signum, handler)
        self._held = []
        if self._pending:
            pending, self._pending = dict.fromkeys(self._pending), []
            for signum in pending:
                _signal.raise_signal(signum)  # its own handler runs at the next bytecode


_getsignal, _get_ident = _signal.getsignal, threading.get_ident
_MAIN_THREAD_ID = threading.main_thread().ident
# Signals a handler can be installed for (SIGKILL and SIGSTOP cannot be caught).
_CATCHABLE = tuple(
    s for s in sorted(_signal.valid_signals()) if s not in (_signal.SIGKILL, _signal.SIGSTOP)
)
