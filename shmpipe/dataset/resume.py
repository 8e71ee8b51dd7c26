"""What reopening a dataset needs of its stats: an empty state laid out as its info.json says,
and the committed episodes' state, from meta/shmpipe/state.npz or, if that is missing or stale,
one scan of the dataset's own files (logged); episodes without image histograms (a dataset
LeRobot wrote) get them from their videos first."""

from __future__ import annotations

import logging
from pathlib import Path

from shmpipe.dataset import capture_times, layout
from shmpipe.dataset.feature_types import FeatureSpec, integer_columns
from shmpipe.dataset.rows import INDEX_COLUMNS
from shmpipe.dataset.state import load_state
from shmpipe.dataset.stats import DatasetStats
from shmpipe.dataset.video_histograms import missing_histograms, write_from_videos

log = logging.getLogger("shmpipe")


def empty_stats(info: dict, features: dict[str, FeatureSpec], cameras) -> DatasetStats:
    """No episode yet. Capture times have no stats: they are seconds of a clock, not data."""
    widths = {name: spec.width for name, spec in features.items()}
    widths.update(dict.fromkeys(INDEX_COLUMNS, 1))
    skip = capture_times.columns_of(info)
    order = [n for n in info["features"] if n not in skip]
    return DatasetStats.empty(order, cameras, widths, integer_columns(info["features"]))


def saved_stats(
    root: Path, empty: DatasetStats, episodes: int, frames: int
) -> tuple[DatasetStats, bool]:
    """(the stats state of `episodes` committed episodes, whether it was rebuilt from the
    files because state.npz was missing, stale or did not fit; the caller saves it then)."""
    arrays, why = load_state(root)
    if arrays is not None:
        try:
            return empty.from_arrays(arrays), False
        except (KeyError, ValueError) as error:
            why = f"{layout.STATE_PATH} does not fit info.json ({error})"
    log.warning("%s: %s; rebuilding it by reading the %d episodes info.json counts",
                root, why, episodes)  # fmt: skip
    missing = missing_histograms(root, episodes)
    if missing:  # episodes another writer (LeRobot's) wrote
        log.warning(
            "%s: %d episodes have no image histograms (written by another writer, such "
            "as LeRobot's); decoding their videos once to count them",
            root,
            len(missing),
        )
        shapes = {camera: h.shape for camera, h in empty.histograms.items()}
        write_from_videos(root, episodes, missing, shapes)
    return empty.rebuilt(root, episodes, frames), True
