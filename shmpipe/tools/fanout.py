"""Where per-dataset / per-source work runs: in this process, one item after another (the
default), or as Ray tasks (`pip install shmpipe[ray]`; a local Ray by default, or the cluster
at an address). Results come back in the items' order whatever runs them, so what is built from
them (merged stats, verdicts) is the same byte for byte. No scheduler of our own: Ray retries a
task whose worker died (max_retries); the tasks shmpipe gives it write only files of their own,
under temporary names, so a retry starts over cleanly. On a cluster the datasets must be on a
file system every node sees at the same path.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shmpipe.errors import ConfigError
from shmpipe.tools.arguments import positive
from shmpipe.tools.progress import Advance

RETRIES = 3  # a task whose worker process dies is run again, up to this many times


class Fanout:
    """Runs `fn` on each item, in this process."""

    def map(self, fn: Callable[[Any], Any], items: Sequence, advance: Advance | None = None,
            weights: Sequence[int] | None = None) -> list:  # fmt: skip
        """[fn(item) for item in items]; advance(weight of the item) as each one ends."""
        results = []
        for i, item in enumerate(items):
            results.append(fn(item))
            if advance is not None:
                advance(1 if weights is None else weights[i])
        return results


class RayFanout(Fanout):
    """Runs `fn` on each item as a Ray task. address None: a local Ray (ray.init()), with
    `workers` CPUs if given; else the address of a cluster to join ("auto", "ray://host:10001")."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--ray needs Ray: pip install 'shmpipe[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            here = str(Path(__file__).resolve().parents[2])  # workers import this shmpipe
            paths = [here, *filter(None, [os.environ.get("PYTHONPATH")])]
            env = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
            ray.init(address=address, num_cpus=workers if address is None else None,
                     runtime_env=env, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)  # fmt: skip

    def map(self, fn: Callable[[Any], Any], items: Sequence, advance: Advance | None = None,
            weights: Sequence[int] | None = None) -> list:  # fmt: skip
        if not items:
            return []
        task = self.ray.remote(max_retries=RETRIES)(_call)
        fn_ref = self.ray.put(fn)
        where = {task.remote(fn_ref, item): i for i, item in enumerate(items)}
        results: list = [None] * len(items)
        pending = list(where)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            i = where[done[0]]
            results[i] = self.ray.get(done[0])
            if advance is not None:
                advance(1 if weights is None else weights[i])
        return results


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def add_command(commands: argparse._SubParsersAction, name: str, summary: str, description: str,
                run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:  # fmt: skip
    """A subcommand over many datasets (merge, stats) with --json, --ray and --workers, run by
    `run`; the caller adds its dataset paths and its own options."""
    parser = commands.add_parser(name, help=summary, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--ray [ADDRESS] and --workers N, for commands that take many datasets."""
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run the per-dataset work as Ray tasks: on a local Ray (no "
                        "ADDRESS), or on the cluster at ADDRESS (needs shmpipe[ray])")  # fmt: skip
    parser.add_argument("--workers", type=positive(int), metavar="N",
                        help="CPUs of the local Ray (default: all)")  # fmt: skip


def fanout_of(args: argparse.Namespace) -> Fanout:
    """The command line's choice: --ray [ADDRESS] ("local": a Ray on this machine)."""
    if args.ray is None:
        return Fanout()
    return RayFanout(None if args.ray == "local" else args.ray, args.workers)
