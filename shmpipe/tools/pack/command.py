"""`shmpipe pack DIR`: its arguments and exit codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shmpipe.tools.arguments import EXIT_BAD_ARGUMENTS, EXIT_OK, EXIT_PROBLEMS, positive

PACK_DESCRIPTION = """\
Merge the episodes' data, video and meta/episodes files into files of at most --data-mb /
--video-mb (default: info.json's, else LeRobot's 100 / 200 MB), laid out as LeRobot lays them
out; videos are remuxed, not re-encoded. Crash-safe; refused while a recorder holds the
dataset. Exit codes: 0 packed, 1 bad arguments, not a dataset or in use, 2 problems found
(refused, nothing changed: as `shmpipe verify` reports them) or packing failed.
"""


def add_pack(commands: argparse._SubParsersAction) -> None:
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
    from shmpipe.tools.pack.packer import NotPackableError, pack
    from shmpipe.tools.progress import ProgressBar

    try:
        with ProgressBar() as progress:
            report = pack(args.root, args.data_mb, args.video_mb, progress)
    except NotPackableError as error:
        print(f"shmpipe pack: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    except ConfigError as error:
        print(f"shmpipe pack: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    except Exception as error:  # an unreadable file, a full disk: the dataset stays loadable
        print(f"shmpipe pack: packing failed: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(report.line())
    return EXIT_OK
