"""The `shmpipe` command (also `python -m shmpipe`): one subcommand per task.

Each subcommand adds its own arguments and a `run(args) -> exit code`; exit codes are shared:
0 ok, 1 bad arguments (with a clear message), 2 the task found or met a problem, 130 stopped by
Ctrl-C (SIGINT).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_BAD_ARGUMENTS, EXIT_PROBLEMS = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit with EXIT_BAD_ARGUMENTS rather than argparse's 2."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_ARGUMENTS, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="shmpipe", description="Record and check LeRobot v3.0 datasets.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from shmpipe.cli_record import add_record  # (it uses this module's exit codes)

    add_record(commands)
    _add_verify(commands)
    _add_pack(commands)
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


PACK_DESCRIPTION = """\
Merge the episodes' data, video and meta/episodes files into files of at most --data-mb /
--video-mb (default: info.json's, else LeRobot's 100 / 200 MB), laid out as LeRobot lays them
out; videos are remuxed, not re-encoded. Crash-safe; refused while a recorder holds the
dataset. Exit codes: 0 packed, 1 bad arguments, not a dataset or in use, 2 packing failed.
"""


def _add_pack(commands: argparse._SubParsersAction) -> None:
    summary = "merge a dataset's per-episode files into LeRobot's size-bounded files"
    parser = commands.add_parser("pack", help=summary, description=PACK_DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("root", metavar="DIR", type=Path, help="the dataset's folder")
    parser.add_argument("--data-mb", type=positive(float), metavar="N",
                        help="size limit of a data parquet file, in MB")  # fmt: skip
    parser.add_argument("--video-mb", type=positive(float), metavar="N",
                        help="size limit of a video file, in MB")  # fmt: skip
    parser.set_defaults(run=_run_pack)


def _run_pack(args: argparse.Namespace) -> int:
    from shmpipe.errors import ConfigError
    from shmpipe.pack import pack

    try:
        report = pack(args.root, args.data_mb, args.video_mb)
    except ConfigError as error:
        print(f"shmpipe pack: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    except Exception as error:  # an unreadable file, a full disk: the dataset stays loadable
        print(f"shmpipe pack: packing failed: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(report.line())
    return EXIT_OK


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
