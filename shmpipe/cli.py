"""The `shmpipe` command (also `python -m shmpipe`): one subcommand per task.

Each subcommand adds its own arguments and a `run(args) -> exit code`; exit codes are shared:
0 ok, 1 bad arguments (with a clear message), 2 the task found or met a problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_BAD_ARGUMENTS, EXIT_PROBLEMS = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit with EXIT_BAD_ARGUMENTS rather than argparse's 2."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_ARGUMENTS, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="shmpipe", description="Record and check LeRobot v3.0 datasets.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_verify(commands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or bad arguments (EXIT_BAD_ARGUMENTS)
        return int(stop.code or 0)
    return args.run(args)


def _add_verify(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "verify",
        help="check that a LeRobot v3.0 dataset on disk is whole",
        description="Check every episode's data rows, every camera's frames (count and "
        "timestamps), info.json's totals and stats.json. Exit code 0: whole; 1: not a "
        "dataset; 2: problems found (one line each).",
    )
    parser.add_argument("root", metavar="DIR", type=Path, help="the dataset's folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--decode",
        action="store_true",
        help="decode every video frame instead of counting packets (slower; also proves "
        "the videos decode)",
    )
    parser.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from shmpipe.verify import NotADatasetError, verify_dataset

    try:
        report = verify_dataset(args.root, decode=args.decode)
    except NotADatasetError as error:
        print(f"shmpipe verify: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    print(json.dumps(report.as_json(), indent=2) if args.json else report.text())
    return EXIT_OK if report.ok else EXIT_PROBLEMS
