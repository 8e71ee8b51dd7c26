"""Many datasets named at once: each path is a dataset, or a folder whose sub-folders (at any
depth, in name order) are datasets; what `merge`, `verify` and `stats` take."""

from __future__ import annotations

from pathlib import Path

from shmpipe.dataset import layout


def dataset_roots(paths: list[Path]) -> list[Path]:
    """The datasets `paths` name, in order: a path with meta/info.json is one; any other folder
    stands for the datasets found under it (sorted); anything else is kept (and refused later
    with a message naming it)."""
    out: list[Path] = []
    for path in paths:
        if (path / layout.INFO_PATH).is_file() or not path.is_dir():
            out.append(path)
            continue
        found = sorted(p.parent.parent for p in path.rglob(layout.INFO_PATH))
        out.extend(found or [path])
    return out
