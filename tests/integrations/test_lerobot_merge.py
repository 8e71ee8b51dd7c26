"""LeRobot (0.4.x and 0.6.x) loads what `shmpipe merge` made with every frame in place; LeRobot
0.6's own aggregate_datasets, given the same three datasets, stores averaged quantiles, and
`shmpipe stats` on its output makes them numpy's again.

Marked `lerobot` (not in the default run): run in a LeRobot venv with PYTHONPATH=the repo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shmpipe.stats.quantiles import QUANTILES
from shmpipe.tools.merge import merge
from shmpipe.tools.stats import restat
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.lerobot import import_lerobot
from tests.helpers.media import decode_video
from tests.helpers.paths import needs_reference
from tests.tools.merge_sources import CAMS, make_sources

pytestmark = [pytest.mark.lerobot, needs_reference]
NUMERIC = ("observation.state", "action", "frame_index", "episode_index", "index", "task_index")


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    return make_sources(tmp_path_factory.mktemp("sources"))


def source_frames(sources: list[Path]) -> dict[str, list[np.ndarray]]:
    """camera -> every frame of the sources, in merged order (each source's files in order)."""
    out = {}
    for camera in CAMS:
        out[camera] = [f for s in sources
                       for p in sorted((s / "videos" / camera).rglob("*.mp4"))
                       for f in decode_video(p)[0]]  # fmt: skip
    return out


def test_lerobot_loads_the_merged_dataset_with_every_frame_in_place(sources, tmp_path):
    datasets = import_lerobot("lerobot.datasets.lerobot_dataset")
    out = tmp_path / "merged"
    merge(out, sources)
    ds = datasets.LeRobotDataset("local/merged", root=out, video_backend="pyav")
    assert (ds.num_episodes, ds.num_frames) == (7, 170)
    frames = source_frames(sources)
    for i in range(ds.num_frames):
        item = ds[i]
        assert int(item["index"]) == i
        for camera in CAMS:
            image = (item[camera].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
            np.testing.assert_array_equal(image, frames[camera][i], err_msg=f"{camera} row {i}")


def numpy_over_rows(root: Path) -> dict[str, dict[str, np.ndarray]]:
    rows = pa.concat_tables(pq.read_table(p) for p in sorted((root / "data").rglob("*.parquet")))
    out = {}
    for name in NUMERIC:
        column = rows.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
            column = column.flatten()
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        values = values.reshape(rows.num_rows, -1)
        out[name] = {k: np.quantile(values, q, axis=0) for k, q in QUANTILES.items()}
        out[name].update(min=values.min(axis=0), max=values.max(axis=0))
    return out


def quantile_errors(root: Path) -> dict[str, float]:
    """feature -> the largest |stored - numpy| of its quantiles, over dims and levels."""
    stored = json.loads((root / "meta/stats.json").read_text())
    exact = numpy_over_rows(root)
    return {name: max(float(np.abs(np.asarray(stored[name][k]) - want[k]).max())
                       for k in QUANTILES) for name, want in exact.items()}  # fmt: skip


def test_lerobot_aggregate_averages_quantiles_and_shmpipe_stats_fixes_them(sources, tmp_path):
    aggregate = import_lerobot("lerobot.datasets.aggregate")
    if not hasattr(aggregate, "aggregate_datasets"):
        pytest.skip("this LeRobot has no aggregate_datasets")
    out = tmp_path / "lerobot-merged"
    aggregate.aggregate_datasets(repo_ids=[f"local/{s.name}" for s in sources],
                                 aggr_repo_id="local/lerobot-merged", roots=sources,
                                 aggr_root=out)  # fmt: skip
    before = quantile_errors(out)
    print("LeRobot aggregate_datasets: largest quantile error per feature:", before)
    assert max(before.values()) > 0.1, before  # averaged quantiles are not the data's
    report = restat(out)
    print("\n".join(report.lines()))
    after = quantile_errors(out)
    assert all(error == 0 for error in after.values()), after
    assert verify_dataset(out).ok
