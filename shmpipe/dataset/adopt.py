"""A LeRobot v3.0 dataset another writer made (LeRobot's own) becomes one shmpipe appends to.

Such a dataset has no `shmpipe` block in info.json: no encoder settings (its features' `info`
blocks name the codec and pixel format, which the recorder must match), no image histograms,
no state.npz. Adopting it adds the block, noting how many episodes another writer made, once the
first open has rebuilt the stats state in one scan (shmpipe.dataset.resume: numeric stats from
the data rows, image histograms from the decoded videos). Its files are left as they are.
"""

from __future__ import annotations

ADOPTED_KEY = "adopted_episodes"  # episodes another writer made, in the shmpipe block


def is_foreign(info: dict) -> bool:
    """An info.json another writer made (LeRobot's): it has no shmpipe block."""
    return "shmpipe" not in info


def adopted(found: dict, wanted: dict) -> dict:
    """`found` (the dataset's info.json) with `wanted`'s shmpipe block, noting the episodes
    another writer made. The writer saves it once the scan of the dataset has succeeded."""
    return {**found, "shmpipe": {**wanted["shmpipe"], ADOPTED_KEY: found["total_episodes"]}}
