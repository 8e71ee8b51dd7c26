"""The `shmpipe` command (also `python -m shmpipe`): one subcommand per task.

Each subcommand module adds its own arguments and a `run(args) -> exit code`; exit codes are
shared (shmpipe.tools.arguments): 0 ok, 1 bad arguments (with a clear message), 2 the task found
or met a problem, 130 stopped by Ctrl-C (SIGINT).
"""

from __future__ import annotations

from collections.abc import Sequence

from shmpipe.tools import demo
from shmpipe.tools.arguments import Parser
from shmpipe.tools.pack.command import add_pack
from shmpipe.tools.record.command import add_record
from shmpipe.tools.verify.command import add_verify


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="shmpipe", description="Record and check LeRobot v3.0 datasets.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_record(commands)
    add_verify(commands)
    add_pack(commands)
    demo.add_demo(commands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or bad arguments (EXIT_BAD_ARGUMENTS)
        return int(stop.code or 0)
    return args.run(args)
