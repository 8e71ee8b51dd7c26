"""`shmpipe merge OUT SRC...`: its arguments and exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shmpipe.tools import fanout
from shmpipe.tools.arguments import EXIT_OK, refused

MERGE_DESCRIPTION = """\
Merge LeRobot v3.0 datasets (shmpipe's or LeRobot's) into the new dataset OUT: the same fps and
features are required; episodes are renumbered in the order given, tasks remapped to one table,
videos copied (never re-encoded), and stats computed exactly over every row and frame.
Crash-safe: OUT appears only once whole; run the same command again to resume an interrupted
merge. Exit codes: 0 merged, 1 bad arguments or sources that cannot be merged (one line naming
the dataset and feature), 2 a source is not whole (as `shmpipe verify` finds it) or merging failed.
"""


def add_merge(commands: argparse._SubParsersAction) -> None:
    parser = fanout.add_command(commands, "merge", "merge LeRobot v3.0 datasets into one",
                                MERGE_DESCRIPTION, _run_merge)  # fmt: skip
    parser.add_argument("out", metavar="OUT", type=Path, help="the new dataset's folder")
    parser.add_argument("sources", metavar="SRC", type=Path, nargs="+",
                        help="source datasets, or folders holding datasets")  # fmt: skip


def _run_merge(args: argparse.Namespace) -> int:
    from shmpipe.errors import ConfigError
    from shmpipe.tools.merge.merger import NotMergeableError, merge
    from shmpipe.tools.progress import ProgressBar
    from shmpipe.tools.sets import dataset_roots

    sources = dataset_roots(args.sources)
    try:
        with ProgressBar(False if args.json else None) as progress:
            report = merge(args.out, sources, fanout.fanout_of(args), progress=progress,
                           announce=lambda line: print(line, file=sys.stderr))  # fmt: skip
    except ConfigError as error:  # NotMergeableError: a source has problems
        return refused("shmpipe merge", error, NotMergeableError)
    if args.json:
        print(json.dumps({"out": str(report.out), "sources": report.sources,
                          "episodes": report.episodes, "frames": report.frames,
                          "tasks": report.tasks, "resumed": report.resumed,
                          "seconds": report.seconds}))  # fmt: skip
    else:
        print(report.line())
    return EXIT_OK

