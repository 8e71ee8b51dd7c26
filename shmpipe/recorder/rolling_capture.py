"""Pipeline.keep()'s side of rolling capture (the window itself is shmpipe.recorder.rolling's):
which take a keep() applies to. A take that rolls is kept at once; a keep() before the first
frame of a take is held until that frame opens the take, rolling, and is then applied to it, so
the caller may keep the next episode before recording it.
"""

from __future__ import annotations

from shmpipe.errors import UsageError
from shmpipe.recorder.session import Session
from shmpipe.recorder.take import IDLE, OPEN, Take


class RollingCapture:
    """keep() on the takes of `session`, which rolls if the Pipeline was made with preroll_s."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._held = False  # a keep() came before the take opened

    def keep(self, take: Take) -> None:
        """Keep `take`'s window, or, while it is IDLE, hold the keep for when it opens; a
        kept (OPEN) take stays as it is. UsageError if the session does not roll."""
        if self._session.roll is None:
            raise UsageError("keep(): the pipeline does not roll; make it with preroll_s=")
        if take.state is IDLE:
            self._held = True
        elif take.state is not OPEN:
            self._session.keep(take)

    def opened(self, take: Take) -> None:
        """`take` was just opened (rolling): a keep() held for it is applied now."""
        if self._held:
            self._held = False
            self._session.keep(take)
