"""The walk of one `Pipeline.finish_episode`: which shmpipe modules it crosses, in order, traced
with sys.setprofile in the calling thread (thread backend: the workers' own calls are not in it).

    python -m bench.finish_walk [--depth 3]

prints the walk as a tree of module transitions (repeats in a row folded as "x N") and every
call back into a module still on the stack (a module re-entered before it returned).
tests/recorder/test_finish_walk.py checks the same trace.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

PREFIX = "shmpipe."
HIDDEN = frozenset({"__hash__", "__eq__", "__repr__", "__str__"})  # a role as a dict key: no step


class ModuleTrace:
    """Module transitions of shmpipe code in this thread: `steps` (depth, module) each time a
    call enters a module other than its caller's (`calls`: the same with the function called),
    `reentries` (module, stack) each time that module was already on the stack. Frames of other
    packages are transparent."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, str]] = []
        self.calls: list[tuple[int, str, str]] = []
        self.reentries: list[tuple[str, tuple[str, ...]]] = []
        self._frames: list[str | None] = []  # per Python frame: its shmpipe module, or None
        self._stack: list[str] = []  # shmpipe modules on the stack, repeats in a row folded

    def __enter__(self) -> ModuleTrace:
        sys.setprofile(self._event)
        return self

    def __exit__(self, *exc_info) -> None:
        sys.setprofile(None)

    def _event(self, frame, event: str, arg) -> None:
        if event == "call":
            module = frame.f_globals.get("__name__", "")
            name = frame.f_code.co_name
            if not module.startswith(PREFIX) or name in HIDDEN:
                self._frames.append(None)
                return
            if self._stack and self._stack[-1] == module:
                self._frames.append(None)  # a call inside the same module
                return
            if module in self._stack:
                self.reentries.append((module, tuple(self._stack)))
            self.steps.append((len(self._stack), module))
            self.calls.append((len(self._stack), module, name))
            self._stack.append(module)
            self._frames.append(module)
        elif event == "return" and self._frames:
            if self._frames.pop() is not None:
                self._stack.pop()


def tree(steps: list[tuple[int, str]], depth: int) -> str:
    """The walk to `depth`, as indented module names; a run of the same block (a module with
    its subtree, or two or three such in turn: a wait loop) is written once, "x N"."""
    return "\n".join(_fold(_blocks([s for s in steps if s[0] <= depth], 0), 0))


def _blocks(steps: list[tuple[int, str]], base: int) -> list[tuple[str, list]]:
    """(module, its children as blocks) for the steps at depth `base`."""
    out: list[tuple[str, list]] = []
    start = None
    for i, (d, _) in enumerate(steps + [(base, "")]):
        if d == base:
            if start is not None:
                out.append((steps[start][1], _blocks(steps[start + 1 : i], base + 1)))
            start = i
    return out


def _fold(blocks: list, depth: int) -> list[str]:
    lines, i = [], 0
    while i < len(blocks):
        for size in (1, 2, 3):
            unit, count = blocks[i : i + size], 1
            while blocks[i + count * size : i + (count + 1) * size] == unit:
                count += 1
            if count > 1 or size == 3:
                break
        if count == 1:
            unit, size = blocks[i : i + 1], 1
        for n, (module, children) in enumerate(unit):
            mark = f"  x {count}" if count > 1 and n == 0 else ""
            lead = "[" if count > 1 and size > 1 and n == 0 else ""
            lines.append("  " * depth + lead + module.removeprefix(PREFIX) + mark)
            lines += _fold(children, depth + 1)
        i += count * size
    return lines


def record_finish(root: Path, backend: str = "thread") -> ModuleTrace:
    """Record a few frames of two cameras, then trace finish_episode."""
    from shmpipe import Pipeline

    shape = (48, 64, 3)
    with Pipeline(root, fps=30, cameras={"front": shape, "wrist": shape},
                  features={"state": (2,)}, backend=backend, control_priority=None) as pipe:
        for i in range(20):
            frame = {"front": np.full(shape, i, np.uint8), "wrist": np.full(shape, 2 * i, np.uint8)}
            pipe.add_frame({**frame, "state": np.zeros(2, np.float32)}, "walk")
        with ModuleTrace() as trace:
            pipe.finish_episode()
    return trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trace = record_finish(Path(tmp) / "dataset")
    print(tree(trace.steps, args.depth))
    print(f"\n{len(trace.reentries)} calls back into a module still on the stack")
    for module, stack in dict.fromkeys(trace.reentries):
        print(f"  {module.removeprefix(PREFIX)}  (stack: {' > '.join(stack)})")


if __name__ == "__main__":
    main()
