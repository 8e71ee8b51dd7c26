"""A LeRobot v3.0 dataset another writer made (LeRobot's own) becomes one shmpipe appends to.

Such a dataset has no `shmpipe` block in info.json: no encoder settings (its features' `info`
blocks name the codec and pixel format, which the recorder must match), no image histograms,
no state.npz. Adopting it adds the block, noting how many episodes another writer made; the
first open then rebuilds the stats state in one scan (shmpipe.dataset.resume: numeric stats from
the data rows, image histograms from the decoded videos). Its files are left as they are.
"""

from __future__ import annotations

from pathlib import Path

from shmpipe.dataset import layout
from shmpipe.dataset.files import sync_folders, write_atomically
from shmpipe.dataset.state import info_text

ADOPTED_KEY = "adopted_episodes"  # episodes another writer made, in the shmpipe block


def is_foreign(info: dict) -> bool:
    """An info.json another writer made (LeRobot's): it has no shmpipe block."""
    return "shmpipe" not in info


def adopt(root: Path, found: dict, wanted: dict) -> dict:
    """Write `found` (the dataset's info.json) with `wanted`'s shmpipe block back, and return
    it. Called holding the writer lock, after the settings were found to match."""
    info = dict(found)
    info["shmpipe"] = {**wanted["shmpipe"], ADOPTED_KEY: found["total_episodes"]}
    path = root / layout.INFO_PATH
    text = info_text(info).encode()
    write_atomically(path, lambda f: f.write(text))
    sync_folders([path], root)
    return info
