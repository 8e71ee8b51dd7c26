"""Image stats of a dataset shmpipe adopted (written first by LeRobot's writer): stats.json
against the summed per-episode histograms of meta/shmpipe/image_histograms.

The adopted episodes' rows in meta/episodes keep the image stats their writer computed (LeRobot's
sampled frames, its std); shmpipe's stats.json is exact over the decoded frames, so for images
merging the episodes' stats is no check there, and the histograms are: exact, one small file
per episode, read one at a time.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from shmpipe.dataset import layout
from shmpipe.dataset.untrusted import file_problem
from shmpipe.stats.images import stats_from_histograms
from shmpipe.tools.verify.stats import EXACT_RTOL, Problems, compare


def histogram_problems(
    root: Path, episodes: int, cameras: list[str], dataset_stats: Mapping[str, dict]
) -> Problems:
    """Each camera whose stats.json entry is not the stats of its summed histograms."""
    sums: dict[str, np.ndarray] = {}
    for episode in range(episodes):
        path = layout.histograms_path(root, episode)
        name = path.relative_to(root).as_posix()
        problem = file_problem(path)
        if problem is not None:
            return [(cameras[0], f"{name} {problem}")] if cameras else []
        try:
            with np.load(path) as saved:
                for camera in cameras:
                    sums[camera] = sums.get(camera, 0) + saved[camera]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            return [(cameras[0], f"{name} is unreadable: {error}")]
    out: Problems = []
    for camera, histogram in sums.items():
        want = stats_from_histograms(histogram)
        claimed = dataset_stats.get(camera)
        if not isinstance(claimed, dict):
            out.append((camera, "is not in meta/stats.json"))
            continue
        out += compare(camera, claimed, want, want, EXACT_RTOL, "the summed image histograms")
    return out
