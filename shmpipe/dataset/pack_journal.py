"""The journal that makes `shmpipe pack` crash-safe: pack writes it, the next open finishes it.

{"state": "writing" | "swapping", "renames": [[temporary, final], ...], "remove": [old, ...]},
paths relative to the root, in meta/shmpipe/pack.json. "writing": the old layout is whole;
"swapping" (the commit point): the new layout is complete under temporary names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from shmpipe.dataset import layout
from shmpipe.dataset.files import write_atomically

PACK_JOURNAL = layout.SHMPIPE_DIR + "/pack.json"
PACKING = ".packing"  # suffix of pack's new files until they are renamed into place


def write_journal(root: Path, journal: dict) -> None:
    """Replace the journal atomically (temporary file and rename)."""
    text = json.dumps(journal, indent=1).encode()
    write_atomically(root / PACK_JOURNAL, lambda f: f.write(text))


def interrupted(root: Path) -> str | None:
    """The state of a pack that was interrupted ("writing" or "swapping"), or None."""
    try:
        return str(json.loads((root / PACK_JOURNAL).read_text()).get("state"))
    except (OSError, ValueError, AttributeError):
        return None


def finish_pack(root: Path) -> None:
    """Bring an interrupted pack to one layout. Journal "writing": the old layout is whole;
    delete the new files. "swapping": the new layout was complete before its first rename;
    finish the renames and the deletions. Idempotent: a crash in here is finished next time."""
    journal = root / PACK_JOURNAL
    if not journal.exists():
        return
    plan = json.loads(journal.read_text())
    for temporary, final in plan["renames"]:
        if plan["state"] == "writing":
            (root / temporary).unlink(missing_ok=True)
        elif (root / temporary).exists():
            os.replace(root / temporary, root / final)
    if plan["state"] == "swapping":
        for old in plan["remove"]:
            (root / old).unlink(missing_ok=True)
    journal.unlink()
