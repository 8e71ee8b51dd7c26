"""`shmpipe lerobot-record ARGS...`: LeRobot's own `lerobot-record ARGS...`, recording through
shmpipe.

Every argument goes to LeRobot unchanged (`--help` included: LeRobot prints its own). The
command installs the drop-in for the LeRobot installed here (shmpipe.integrations.lerobot.swap:
create and --resume both go to LeRobotRecorder) and runs LeRobot's entry point,
`lerobot.scripts.lerobot_record.main()`, as the `lerobot-record` script would. At the end it
prints one line per episode it saved (frames, save_episode seconds).

The `shmpipe` command finds this subcommand through the entry-point group "shmpipe.commands"
(pyproject.toml), so shmpipe.tools never imports this package. Also runnable as
`python -m shmpipe.integrations.lerobot ARGS...`.

Exit codes as every shmpipe command: 0 ok, 1 LeRobot missing or settings shmpipe refuses (a
one-line message, no traceback), 2 a recording error of shmpipe's (one line), 130 Ctrl-C (the
open episode is discarded, saved episodes stay). Any other exception
(the robot's, LeRobot's) is LeRobot's to report and propagates with its own traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shmpipe.errors import ConfigError, ShmpipeError

EXIT_OK, EXIT_BAD_ARGUMENTS, EXIT_PROBLEMS, EXIT_INTERRUPTED = 0, 1, 2, 130  # as tools.arguments
PASS_THROUGH = "pass_through"  # set on the parser: the `shmpipe` command hands unknown args on


def add_command(commands: argparse._SubParsersAction) -> None:
    """Register `lerobot-record` with the `shmpipe` command's subparsers (entry point)."""
    parser = commands.add_parser(
        "lerobot-record", add_help=False,
        help="LeRobot's lerobot-record, recording through shmpipe (same arguments)",
        description=__doc__.split("\n\n")[0],
    )  # fmt: skip
    parser.set_defaults(run=lambda args: run(args.extra_args), **{PASS_THROUGH: True})


def run(lerobot_args: Sequence[str]) -> int:
    """Install the drop-in, then run LeRobot's lerobot-record with `lerobot_args`."""
    from shmpipe.integrations.lerobot.compat04 import warm_headless_check
    from shmpipe.integrations.lerobot.swap import LeRobotMissing, install

    try:
        handle = install()
    except LeRobotMissing as error:
        print(f"shmpipe lerobot-record: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    print(f"shmpipe lerobot-record: LeRobot {handle.lerobot_version} ({handle.api} API): "
          "new datasets and --resume record through shmpipe", file=sys.stderr, flush=True)
    warm_headless_check()
    saved_argv = sys.argv
    sys.argv = ["lerobot-record", *lerobot_args]
    try:
        handle.module.main()
    except KeyboardInterrupt:
        print("\nshmpipe lerobot-record: stopped (Ctrl-C); the open episode was discarded, "
              "saved episodes stay", file=sys.stderr)  # fmt: skip
        code = EXIT_INTERRUPTED
    except ShmpipeError as error:
        print(f"shmpipe lerobot-record: {error}", file=sys.stderr)
        code = EXIT_BAD_ARGUMENTS if isinstance(error, ConfigError) else EXIT_PROBLEMS
    else:
        code = EXIT_OK
    finally:
        sys.argv = saved_argv
        handle.undo()
        for recorder in handle.recorders:
            recorder.finalize()  # a no-op after LeRobot's own finalize
        print_summary(handle.recorders)
    return code


def print_summary(recorders) -> None:
    for recorder in recorders:
        frames = sum(n for _, n, _ in recorder.saved)
        print(f"shmpipe: {recorder.root}: {len(recorder.saved)} episodes saved in this session "
              f"({frames} frames); the dataset has {recorder.num_episodes} episodes, "
              f"{recorder.num_frames} frames")  # fmt: skip
        for episode, n, took in recorder.saved:
            print(f"shmpipe:   episode {episode}: {n} frames, save_episode {took:.2f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m shmpipe.integrations.lerobot ARGS...`"""
    return run(sys.argv[1:] if argv is None else argv)
