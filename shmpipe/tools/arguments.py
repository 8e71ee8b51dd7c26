"""What every `shmpipe` subcommand shares: exit codes, a parser that exits 1 on bad arguments,
and argument types.
"""

from __future__ import annotations

import argparse
import sys

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
