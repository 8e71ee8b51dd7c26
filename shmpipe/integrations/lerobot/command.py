"""`shmpipe lerobot-record ARGS...` and `shmpipe lerobot-rollout ARGS...`: LeRobot's own
`lerobot-record` / `lerobot-rollout` (0.6+) with the same arguments, recording through shmpipe.

Every argument goes to LeRobot unchanged (`--help` included: LeRobot prints its own). The
command installs the drop-in for the LeRobot installed here (shmpipe.integrations.lerobot.swap:
create and --resume both go to LeRobotRecorder) and runs LeRobot's entry point,
`lerobot.scripts.lerobot_record.main()` or `lerobot.scripts.lerobot_rollout.main()`, as
LeRobot's script would. At the end it prints one line per episode it saved (frames,
save_episode seconds).

The `shmpipe` command finds both subcommands through one entry point of the group
"shmpipe.commands" (pyproject.toml; `add_command` adds both, so an existing install's metadata
needs no change), and shmpipe.tools never imports this package. Also runnable as
`python -m shmpipe.integrations.lerobot ARGS...` (lerobot-record).

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
SCRIPTS = {  # LeRobot's command -> the module whose main() it runs
    "lerobot-record": "lerobot.scripts.lerobot_record",
    "lerobot-rollout": "lerobot.scripts.lerobot_rollout",  # LeRobot 0.6+
}


def add_command(commands: argparse._SubParsersAction) -> None:
    """Register `lerobot-record` and `lerobot-rollout` with the `shmpipe` command's subparsers
    (entry point)."""
    for script in SCRIPTS:
        parser = commands.add_parser(
            script, add_help=False,
            help=f"LeRobot's {script}, recording through shmpipe (same arguments)",
            description=__doc__.split("\n\n")[0],
        )  # fmt: skip
        parser.set_defaults(run=lambda args, script=script: run(args.extra_args, script),
                            **{PASS_THROUGH: True})  # fmt: skip


def script_main(script: str):
    """LeRobot's entry point of `script`; LeRobotMissing naming the release if it has none."""
    from importlib import import_module

    from shmpipe.integrations.lerobot.swap import LeRobotMissing, lerobot_version

    try:
        return import_module(SCRIPTS[script]).main
    except ImportError as error:
        raise LeRobotMissing(
            f"LeRobot {lerobot_version()} has no {script} ({SCRIPTS[script]}: {error}); "
            "lerobot-rollout arrived in LeRobot 0.6 (Python >= 3.12)"
        ) from error


def run(lerobot_args: Sequence[str], script: str = "lerobot-record") -> int:
    """Install the drop-in, then run LeRobot's `script` with `lerobot_args`."""
    from shmpipe.integrations.lerobot.compat04 import warm_headless_check
    from shmpipe.integrations.lerobot.swap import LeRobotMissing, install

    try:
        handle = install()
    except LeRobotMissing as error:
        print(f"shmpipe {script}: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    try:
        lerobot_main = script_main(script)
    except LeRobotMissing as error:  # LeRobot < 0.6 and lerobot-rollout
        handle.undo()
        print(f"shmpipe {script}: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    print(f"shmpipe {script}: LeRobot {handle.lerobot_version} ({handle.api} API): "
          "new datasets and --resume record through shmpipe", file=sys.stderr, flush=True)
    warm_headless_check()
    saved_argv = sys.argv
    sys.argv = [script, *lerobot_args]
    try:
        lerobot_main()
    except KeyboardInterrupt:
        print(f"\nshmpipe {script}: stopped (Ctrl-C); the open episode was discarded, "
              "saved episodes stay", file=sys.stderr)  # fmt: skip
        code = EXIT_INTERRUPTED
    except ShmpipeError as error:
        print(f"shmpipe {script}: {error}", file=sys.stderr)
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
