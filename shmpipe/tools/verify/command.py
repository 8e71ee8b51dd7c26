"""`shmpipe verify DIR`: its arguments and exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shmpipe.tools import fanout
from shmpipe.tools.arguments import EXIT_BAD_ARGUMENTS, EXIT_OK, EXIT_PROBLEMS, number_in


def add_verify(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "verify",
        help="check that a LeRobot v3.0 dataset on disk is whole",
        description="Check every episode's data rows, every camera's frames (count and "
        "timestamps), info.json's totals and stats.json. Exit code 0: whole; 1: not a "
        "dataset; 2: problems found (one line each).",
    )
    parser.add_argument("roots", metavar="DIR", type=Path, nargs="+",
                        help="the dataset's folder; several, or folders of datasets, are "
                        "checked one by one (or on Ray: --ray)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--decode",
        action="store_true",
        help="decode every video frame instead of counting packets (slower; also proves "
        "the videos decode)",
    )
    parser.add_argument(
        "--timing",
        action="store_true",
        help="also report, from the stored capture times, each camera's capture rate, repeats "
        "and worst gap and the skew between cameras; a camera captured more slowly than fps "
        "(by more than --timing-tolerance) is a problem",
    )
    fraction = number_in(0, 1, "a fraction in [0, 1)")
    parser.add_argument("--timing-tolerance", type=fraction, default=None, metavar="FRACTION",
                        help="how far below fps a capture rate may be (default: 0.05)")  # fmt: skip
    fanout.add_arguments(parser)
    parser.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from shmpipe.tools.progress import ProgressBar
    from shmpipe.tools.sets import dataset_roots
    from shmpipe.tools.verify.verifier import NotADatasetError, Problem, verify_dataset

    roots = dataset_roots(args.roots)
    if len(roots) != 1 or args.ray is not None:
        return _run_many(args, roots)
    args.root = roots[0]
    try:
        with ProgressBar(False if args.json else None) as progress:
            report = verify_dataset(args.root, decode=args.decode, progress=progress)
    except NotADatasetError as error:
        print(f"shmpipe verify: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    timing = _timing(args) if args.timing or args.timing_tolerance is not None else None
    if timing is not None:
        report.problems += [Problem(m, e, c, "capture times") for e, c, m in timing.slow]
    if args.json:
        out = report.as_json()
        if timing is not None:
            out["timing"] = timing.as_json()
        print(json.dumps(out, indent=2))
    else:
        print("\n".join([*(timing.lines() if timing else []), report.text()]))
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _run_many(args: argparse.Namespace, roots: list[Path]) -> int:
    from shmpipe.tools.progress import ProgressBar
    from shmpipe.tools.verify.many import VerifyEach, summary

    if args.timing or args.timing_tolerance is not None:
        print("shmpipe verify: --timing checks one dataset at a time", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    each = VerifyEach(decode=args.decode)
    with ProgressBar(False if args.json else None) as progress:
        runner = fanout.fanout_of(args)
        results = runner.map(each, roots, progress.phase("datasets", len(roots)))
    if args.json:
        found = [report.as_json() if report else {"ok": False, "root": str(root), "error": error}
                 for root, (report, error) in zip(roots, results, strict=True)]  # fmt: skip
        print(json.dumps(found, indent=2))
    else:
        for root, (report, error) in zip(roots, results, strict=True):
            print(f"== {root}\n" + (report.text() if report else f"not a dataset: {error}"))
        print(summary(results))
    if any(report is None for report, _ in results):
        return EXIT_BAD_ARGUMENTS
    return EXIT_OK if all(report.ok for report, _ in results) else EXIT_PROBLEMS


def _timing(args: argparse.Namespace):
    from shmpipe.stats.timing import SLOW_TOLERANCE
    from shmpipe.tools.verify.timing import check_timing

    tolerance = SLOW_TOLERANCE if args.timing_tolerance is None else args.timing_tolerance
    return check_timing(args.root, tolerance)
