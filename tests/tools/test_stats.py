"""shmpipe stats: a dataset LeRobot wrote gets stats that are numpy's over every row and every
decoded pixel, in stats.json and per episode, in place (data, videos, info.json untouched),
with its largest differences reported; an interrupted run is finished by the next."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe.dataset.pack_journal import PACK_JOURNAL
from shmpipe.stats.quantiles import QUANTILES
from shmpipe.tools.cli import main as cli
from shmpipe.tools.stats import recompute as restat_module
from shmpipe.tools.stats import restat
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.media import decode_video
from tests.helpers.paths import REFERENCE, needs_reference

pytestmark = needs_reference
CAMERAS = ("observation.images.cam0", "observation.images.cam1")
UNTOUCHED = ("data", "videos", "meta/info.json", "meta/tasks.parquet")


@pytest.fixture
def root(tmp_path) -> Path:
    return shutil.copytree(REFERENCE, tmp_path / "ds")


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for name in UNTOUCHED
            for p in ([root / name] if (root / name).is_file() else (root / name).rglob("*"))
            if p.is_file()}  # fmt: skip


def expected(values: np.ndarray) -> dict[str, np.ndarray]:
    out = {"min": values.min(axis=0), "max": values.max(axis=0), "mean": values.mean(axis=0),
           "std": values.std(axis=0)}  # fmt: skip
    out.update({k: np.quantile(values, q, axis=0) for k, q in QUANTILES.items()})
    return out


def test_stats_of_a_lerobot_dataset_become_numpy_over_rows_and_pixels(root, capsys):
    before = files(root)
    assert cli(["stats", str(root)]) == 0
    printed = capsys.readouterr().out
    assert "episode_index q01 dim 0: stored 0.5, exact 0" in printed, printed
    assert files(root) == before
    stats = json.loads((root / "meta/stats.json").read_text())
    rows = pq.read_table(root / "data/chunk-000/file-000.parquet")
    for name in ("observation.state", "action", "episode_index", "index", "frame_index"):
        values = np.array(rows.column(name).to_pylist(), np.float64).reshape(rows.num_rows, -1)
        for key, want in expected(values).items():
            np.testing.assert_allclose(stats[name][key], want, rtol=1e-12, err_msg=f"{name} {key}")
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    for camera in CAMERAS:
        frames, _ = decode_video(root / f"videos/{camera}/chunk-000/file-000.mp4")
        pixels = np.stack(frames).reshape(-1, 3).astype(np.float64) / 255
        for key, want in expected(pixels).items():
            got = np.asarray(stats[camera][key]).reshape(-1)
            np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=f"{camera} {key}")
        for e, episode in enumerate(episodes):  # 30 frames each, in order
            part = np.stack(frames[30 * e : 30 * e + 30]).reshape(-1, 3) / 255
            got = np.asarray(episode[f"stats/{camera}/q99"]).reshape(-1)
            np.testing.assert_allclose(got, np.quantile(part, 0.99, axis=0), rtol=1e-12)
    assert verify_dataset(root).ok
    restat(root)
    assert restat(root).differences == []


def test_dry_run_reports_and_changes_nothing(root):
    before = (root / "meta/stats.json").read_bytes(), files(root)
    report = restat(root, write=False)
    assert report.differences and not report.written
    assert ((root / "meta/stats.json").read_bytes(), files(root)) == before


def test_an_interrupted_run_is_finished_by_the_next(root, monkeypatch):
    real = restat_module.finish_pack
    calls = []

    def crash_at_commit(path):
        calls.append(path)
        if len(calls) == 2:  # after the journal's "swapping": the commit point
            raise KeyboardInterrupt
        real(path)

    monkeypatch.setattr(restat_module, "finish_pack", crash_at_commit)
    with pytest.raises(KeyboardInterrupt):
        restat(root)
    assert json.loads((root / PACK_JOURNAL).read_text())["state"] == "swapping"
    assert not verify_dataset(root).ok  # it names the interrupted journal
    monkeypatch.setattr(restat_module, "finish_pack", real)
    report = restat(root)
    assert report.differences == [] and not (root / PACK_JOURNAL).exists()
    assert verify_dataset(root).ok
