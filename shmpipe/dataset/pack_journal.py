"""The journal that makes `shmpipe pack` crash-safe: pack writes it, the next open finishes it.

{"state": "writing" | "swapping", "renames": [[temporary, final], ...], "remove": [old, ...]},
paths relative to the root, in meta/shmpipe/pack.json. "writing": the old layout is whole;
"swapping" (the commit point): the new layout is complete under temporary names. The swap
deletes the old files first, then renames the new ones in the journal's order (pack lists each
kind's highest file number first): a reader that globs meanwhile may miss rows, but never finds
one twice (a packed file replaces a lower-numbered old one only once the files it holds and
every higher-numbered name are dealt with).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from shmpipe.dataset import layout
from shmpipe.dataset.files import write_atomically
from shmpipe.dataset.untrusted import DamagedDatasetError, read_json

PACK_JOURNAL = layout.PACK_JOURNAL


def write_journal(root: Path, journal: dict) -> None:
    """Replace the journal atomically (temporary file and rename)."""
    text = json.dumps(journal, indent=1).encode()
    write_atomically(root / PACK_JOURNAL, lambda f: f.write(text))


def interrupted(root: Path) -> str | None:
    """The state of a pack that was interrupted ("writing" or "swapping"), or None."""
    if not (root / PACK_JOURNAL).exists():
        return None
    try:
        journal = read_json(root / PACK_JOURNAL, PACK_JOURNAL)
    except DamagedDatasetError as error:
        return f"unknown ({error})"
    return str(journal.get("state")) if isinstance(journal, dict) else "unknown"


def finish_pack(root: Path) -> None:
    """Bring an interrupted pack to one layout. Journal "writing": the old layout is whole;
    delete the new files. "swapping": the new layout was complete before its first rename;
    finish the deletions and the renames. Idempotent: a crash in here is finished next time."""
    journal = root / PACK_JOURNAL
    if not journal.exists():
        return
    plan = _plan(root, read_json(journal, str(journal)))
    if plan["state"] == "swapping":  # first the old files, so that no row is found twice
        for old in plan["remove"]:
            (root / old).unlink(missing_ok=True)
    for temporary, final in plan["renames"]:
        if plan["state"] == "writing":
            (root / temporary).unlink(missing_ok=True)
        elif (root / temporary).exists():
            os.replace(root / temporary, root / final)
    journal.unlink()


def _plan(root: Path, plan: object) -> dict:
    """The journal if it only names files inside the dataset; DamagedDatasetError otherwise
    (a journal is never trusted to rename or delete elsewhere)."""
    try:
        paths = [p for pair in plan["renames"] for p in pair] + list(plan["remove"])
        if plan["state"] not in ("writing", "swapping") or not all(
            isinstance(p, str) and _inside(root, p) for p in paths
        ):
            raise ValueError
    except (TypeError, KeyError, ValueError):
        raise DamagedDatasetError(
            f"{root / PACK_JOURNAL}: expected a pack journal naming files inside the dataset; "
            "it is damaged: restore the dataset from a copy"
        ) from None
    return plan


def _inside(root: Path, relative: str) -> bool:
    path = Path(relative)
    return not path.is_absolute() and ".." not in path.parts and "\0" not in relative
