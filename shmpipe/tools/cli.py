"""The `shmpipe` command (also `python -m shmpipe`): one subcommand per task.

Each subcommand module adds its own arguments and a `run(args) -> exit code`; exit codes are
shared (shmpipe.tools.arguments): 0 ok, 1 bad arguments (with a clear message), 2 the task found
or met a problem, 130 stopped by Ctrl-C (SIGINT).

Subcommands of other packages register through the entry-point group "shmpipe.commands": each
entry point is a function taking the subparsers (shmpipe's own `lerobot-record` comes this way,
from shmpipe.integrations, which the tools do not import). A subparser whose defaults set
`pass_through=True` receives the arguments it does not define as `args.extra_args`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

COMMANDS_GROUP = "shmpipe.commands"  # entry points: subcommands other packages add
EXIT_INTERRUPTED = 130  # shmpipe.tools.arguments', not imported yet when Ctrl-C comes early


def main(argv: Sequence[str] | None = None) -> int:
    """Ctrl-C at any moment, even while the subcommands load (~0.6 s), exits 130 quietly."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("\nshmpipe: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    from importlib.metadata import entry_points

    from shmpipe.tools import demo
    from shmpipe.tools.arguments import Parser, run_command
    from shmpipe.tools.merge.command import add_merge
    from shmpipe.tools.pack.command import add_pack
    from shmpipe.tools.record.command import add_record
    from shmpipe.tools.stats.command import add_stats
    from shmpipe.tools.verify.command import add_verify

    parser = Parser(prog="shmpipe", description="Record and check LeRobot v3.0 datasets.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_record(commands)
    add_verify(commands)
    add_pack(commands)
    add_merge(commands)
    add_stats(commands)
    demo.add_demo(commands)
    for entry in entry_points(group=COMMANDS_GROUP):
        entry.load()(commands)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "pass_through", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as stop:  # --help (0) or bad arguments (EXIT_BAD_ARGUMENTS)
        return int(stop.code or 0)
    args.extra_args = extra
    return run_command(args, f"shmpipe {args.command}")
