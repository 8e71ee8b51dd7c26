"""meta/shmpipe/state.npz: what resuming needs, so that opening a dataset reads a bounded amount
whatever its size: the dataset-level stats state (image histograms, numeric columns' moments and
quantile sketches). Written with every commit, atomically and fsynced, before meta/info.json;
it names the info.json text of its commit (a digest), so it is trusted only while info.json is
that text. Missing, stale or unreadable, it is rebuilt from the dataset's own files (one scan).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from shmpipe.dataset import layout
from shmpipe.dataset.files import publish, write_unpublished
from shmpipe.dataset.info import info_text

STATE_FORMAT = 1
_HEADER = "header"


def digest(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def save_state(root: Path, info: dict, arrays: Mapping[str, np.ndarray]) -> None:
    """The state of the commit whose meta/info.json is `info`, in place."""
    path = root / layout.STATE_PATH
    publish(stage_state(root, info, arrays), path)


def stage_state(root: Path, info: dict, arrays: Mapping[str, np.ndarray]) -> Path:
    """The state of the commit whose meta/info.json will be `info`, written and synced under
    its staged name (returned)."""
    header = {
        "format": STATE_FORMAT,
        "info_digest": digest(info_text(info)),
        "total_episodes": info["total_episodes"],
        "total_frames": info["total_frames"],
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{_HEADER: np.array(json.dumps(header))})
    return write_unpublished(root / layout.STATE_PATH, lambda f: f.write(buffer.getbuffer()))


def load_state(root: Path) -> tuple[dict[str, np.ndarray] | None, str]:
    """(the saved arrays, "") if the state belongs to the info.json on disk; else (None, why)."""
    path = root / layout.STATE_PATH
    if not path.is_file():
        return None, f"{layout.STATE_PATH} is missing"
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
        header = json.loads(str(arrays.pop(_HEADER)))
        on_disk = digest((root / layout.INFO_PATH).read_bytes())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        return None, f"{layout.STATE_PATH} is unreadable ({error})"
    if header.get("format") != STATE_FORMAT:
        return None, f"{layout.STATE_PATH} has format {header.get('format')!r}"
    if header.get("info_digest") != on_disk:
        counted = header.get("total_episodes")
        return None, (f"{layout.STATE_PATH} belongs to another info.json (saved with {counted} "
                      "episodes: a commit or an adoption was interrupted)")
    return arrays, ""
