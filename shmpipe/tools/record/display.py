"""`shmpipe record --display`: the live preview's arguments (LeRobot's --display_data,
--display_ip and --display_port, plus a file for a robot without a screen), as a PreviewConfig."""

from __future__ import annotations

import argparse

from shmpipe.errors import ConfigError
from shmpipe.recorder.preview import DEFAULT_VIEWER_PORT, PreviewConfig
from shmpipe.tools.arguments import number_in


def add_display_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "live preview in Rerun (needs pip install 'shmpipe[preview]'); it never slows recording"
    )
    group.add_argument("--display", action="store_true",
                       help="show every camera and feature live: spawns a Rerun viewer here, or "
                       "with --display-ip sends to one elsewhere")  # fmt: skip
    group.add_argument("--display-ip", metavar="IP",
                       help="the computer running the viewer (`rerun` there); implies --display")
    group.add_argument("--display-port", type=number_in(1, 65536, "a port 1..65535"),
                       default=DEFAULT_VIEWER_PORT, metavar="PORT",
                       help=f"its port (default: {DEFAULT_VIEWER_PORT})")  # fmt: skip
    group.add_argument("--display-save", metavar="PATH",
                       help="write the preview to this .rrd file instead (open it later with "
                       "`rerun PATH`); implies --display")  # fmt: skip


def preview_from(args: argparse.Namespace) -> PreviewConfig | None:
    """None unless a --display option was given; ConfigError (a ValueError) if two conflict."""
    if args.display_save and args.display_ip:
        raise ConfigError("--display-save and --display-ip: choose one")
    if args.display_save:
        return PreviewConfig("save", path=args.display_save)
    if args.display_ip:
        return PreviewConfig("connect", address=f"{args.display_ip}:{int(args.display_port)}")
    return PreviewConfig("spawn") if args.display else None
