"""Where `shmpipe record`'s words go: the episode log on stdout (which may go away), and the
`shmpipe` logger's warnings on the live view or stderr."""

from __future__ import annotations

import contextlib
import logging
import os
import sys


def say(text: str) -> None:
    """Print a line of the log on stdout; if whoever read it has gone (`| head -1`), the rest
    goes nowhere and recording goes on: the log is not the data."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # also for the flush at exit
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def warnings_on_screen(console):
    """Show the `shmpipe` logger's warnings while recording: through rich's console under the
    live view, else on stderr. shmpipe.tools.record.session's own warnings are left out: the
    summary shows them already."""
    if console is not None:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console, show_time=False, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    handler.addFilter(lambda record: not record.name.startswith("shmpipe.tools.record.session"))
    logger = logging.getLogger("shmpipe")

    @contextlib.contextmanager
    def attached():
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)

    return attached()
