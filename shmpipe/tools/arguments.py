"""What every `shmpipe` subcommand shares: exit codes, a parser that exits 1 on bad arguments,
argument types, and counts in words ("1 episode", "2 episodes").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from shmpipe.errors import ShmpipeError

EXIT_OK, EXIT_BAD_ARGUMENTS, EXIT_PROBLEMS = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


class Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit with EXIT_BAD_ARGUMENTS rather than argparse's 2."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_ARGUMENTS, f"{self.prog}: error: {message}\n")


def positive(kind):
    def check(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what} > 0, got {text!r}")
        return value

    return check


def number_in(low: float, high: float, what: str):
    """An argparse type: a number with low <= value < high, else an error saying `what`."""

    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not low <= value < high:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return check


def writable_folder(text: str) -> Path:
    """An argparse type: a dataset folder that exists and is writable, or can be made.

    Probed by making (and removing) a folder in it or in its nearest existing parent, so /proc,
    a read-only mount or a file in the way is a clear message here, not an errno from deep in
    the first write; nothing is left behind."""
    root = Path(text)
    existing = next(p for p in (root.absolute(), *root.absolute().parents) if p.exists())
    if not existing.is_dir():
        where = "it" if existing == root.absolute() else str(existing)
        raise argparse.ArgumentTypeError(f"cannot use {text} as the dataset folder: "
                                         f"{where} is not a folder")  # fmt: skip
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".shmpipe-probe-", dir=existing))
    except OSError as error:
        what = "it is not writable" if existing == root.absolute() else (
            f"no folder can be made in {existing}")
        raise argparse.ArgumentTypeError(
            f"cannot use {text} as the dataset folder: {what} ({error.strerror})"
        ) from None
    return root


def count(n: int, noun: str) -> str:
    """"1 episode", "0 episodes", "3 cameras": a number and its noun, singular or plural."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def run_command(args: argparse.Namespace, prog: str) -> int:
    """Run a parsed command; a ShmpipeError (a setting, the machine, the data: its message says
    what to do) is one line on stderr and exit 1, not a traceback."""
    try:
        return args.run(args)
    except ShmpipeError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1


def refused(prog: str, error: Exception, problems: type[Exception]) -> int:
    """Print why a command refused or failed; EXIT_PROBLEMS for a `problems` error (the data
    has problems), else EXIT_BAD_ARGUMENTS (the arguments or settings cannot be used)."""
    print(f"{prog}: {error}", file=sys.stderr)
    return EXIT_PROBLEMS if isinstance(error, problems) else EXIT_BAD_ARGUMENTS
