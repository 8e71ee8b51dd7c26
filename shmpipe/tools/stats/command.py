"""`shmpipe stats DIR...`: its arguments and exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shmpipe.tools.arguments import EXIT_OK, refused

STATS_DESCRIPTION = """\
Recompute the stats of LeRobot v3.0 datasets (shmpipe's or LeRobot's) exactly: numpy over every
row and every downsampled pixel (decoding the videos where shmpipe kept no histograms), and
write meta/stats.json and meta/episodes' per-episode stats in place (data and videos are not
touched; crash-safe). Prints the largest differences against the stored stats. Exit codes: 0
done, 1 bad arguments, not a dataset or in use, 2 a dataset has other problems (as `shmpipe
verify` finds them; nothing changed) or failed.
"""


def add_stats(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("stats", help="recompute a dataset's stats exactly, in place",
                                 description=STATS_DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("roots", metavar="DIR", type=Path, nargs="+",
                        help="datasets, or folders holding datasets")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true",
                        help="only report the differences; change nothing")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=_run_stats)


def _run_stats(args: argparse.Namespace) -> int:
    from shmpipe.errors import ConfigError
    from shmpipe.tools.progress import ProgressBar
    from shmpipe.tools.sets import dataset_roots
    from shmpipe.tools.stats.recompute import NotWholeError, restat

    reports, code = [], EXIT_OK
    for root in dataset_roots(args.roots):
        try:
            with ProgressBar(False if args.json else None) as progress:
                reports.append(restat(root, write=not args.dry_run, progress=progress))
        except ConfigError as error:  # NotWholeError: other problems than stats
            code = max(code, refused("shmpipe stats", error, NotWholeError))
            continue
        if not args.json:
            print("\n".join(reports[-1].lines()))
    if args.json:
        print(json.dumps([{"root": str(r.root), "episodes": r.episodes, "written": r.written,
                           "differences": r.differences, "seconds": r.seconds}
                          for r in reports], indent=2))  # fmt: skip
    return code
