"""`shmpipe stats DIR...`: its arguments and exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shmpipe.tools import fanout
from shmpipe.tools.arguments import EXIT_BAD_ARGUMENTS, EXIT_OK, EXIT_PROBLEMS

STATS_DESCRIPTION = """\
Recompute the stats of LeRobot v3.0 datasets (shmpipe's or LeRobot's) exactly: numpy over every
row and every downsampled pixel (decoding the videos where shmpipe kept no histograms), and
write meta/stats.json and meta/episodes' per-episode stats in place (data and videos are not
touched; crash-safe). Prints the largest differences against the stored stats. Exit codes: 0
done, 1 bad arguments, not a dataset or in use, 2 a dataset has other problems (as `shmpipe
verify` finds them; nothing changed) or failed.
"""


def add_stats(commands: argparse._SubParsersAction) -> None:
    parser = fanout.add_command(commands, "stats", "recompute a dataset's stats exactly, in place",
                                STATS_DESCRIPTION, _run_stats)  # fmt: skip
    parser.add_argument("roots", metavar="DIR", type=Path, nargs="+",
                        help="datasets, or folders holding datasets")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true",
                        help="only report the differences; change nothing")  # fmt: skip


def _run_stats(args: argparse.Namespace) -> int:
    from shmpipe.tools.progress import ProgressBar
    from shmpipe.tools.sets import dataset_roots
    from shmpipe.tools.stats.recompute import RestatEach

    roots = dataset_roots(args.roots)
    each, code = RestatEach(write=not args.dry_run), EXIT_OK
    with ProgressBar(False if args.json else None) as progress:
        runner = fanout.fanout_of(args)
        if type(runner) is fanout.Fanout:  # in this process: a bar per dataset's episodes
            each.progress = progress
        results = runner.map(each, roots, progress.phase("datasets", len(roots)))
    reports = []
    for report, error, problems in results:
        if report is None:
            print(f"shmpipe stats: {error}", file=sys.stderr)
            code = max(code, EXIT_PROBLEMS if problems else EXIT_BAD_ARGUMENTS)
            continue
        reports.append(report)
        if not args.json:
            print("\n".join(report.lines()))
    if args.json:
        print(json.dumps([{"root": str(r.root), "episodes": r.episodes, "written": r.written,
                           "differences": r.differences, "seconds": r.seconds}
                          for r in reports], indent=2))  # fmt: skip
    return code
