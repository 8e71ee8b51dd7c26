"""`shmpipe verify DIR`: its arguments and exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shmpipe.tools.arguments import EXIT_BAD_ARGUMENTS, EXIT_OK, EXIT_PROBLEMS


def add_verify(commands: argparse._SubParsersAction) -> None:
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
    from shmpipe.tools.verify.verifier import NotADatasetError, verify_dataset

    try:
        report = verify_dataset(args.root, decode=args.decode)
    except NotADatasetError as error:
        print(f"shmpipe verify: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    print(json.dumps(report.as_json(), indent=2) if args.json else report.text())
    return EXIT_OK if report.ok else EXIT_PROBLEMS
