"""merge: two shmpipe datasets and one LeRobot wrote become one whose every stat is numpy's
over every row and pixel, whose indices and tasks are renumbered, whose videos are the sources'
bytes, which verify passes; incompatible sources are refused in one line with nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shmpipe import ConfigError
from shmpipe.stats.quantiles import QUANTILES
from shmpipe.tools.cli import main as cli
from shmpipe.tools.fanout import Fanout
from shmpipe.tools.merge import merge
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.media import decode_video
from tests.helpers.paths import REFERENCE, needs_reference
from tests.tools.merge_sources import CAMS, make_sources, raw_frames

pytestmark = needs_reference


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    return make_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="module")
def merged(sources, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "out"
    merge(out, sources)
    return out


def all_rows(root: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted((root / "data").rglob("*.parquet")))


def episodes_of(root: Path) -> list[dict]:
    files = sorted((root / "meta/episodes").rglob("*.parquet"))
    return sorted((r for f in files for r in pq.read_table(f).to_pylist()),
                  key=lambda r: r["episode_index"])  # fmt: skip


def numpy_stats(values: np.ndarray, channels_first: bool = False) -> dict[str, np.ndarray]:
    axis = 1 if channels_first else 0
    out = {"min": values.min(axis=axis), "max": values.max(axis=axis),
           "mean": values.mean(axis=axis), "std": values.std(axis=axis)}  # fmt: skip
    for key, level in QUANTILES.items():
        out[key] = np.quantile(values, level, axis=axis, method="linear")
    return out


def reference_pixels(camera: str) -> np.ndarray:
    frames, _ = decode_video(REFERENCE / f"videos/{camera}/chunk-000/file-000.mp4")
    return np.stack(frames)


def test_merged_stats_are_numpy_over_every_row_and_pixel(merged):
    stats = json.loads((merged / "meta/stats.json").read_text())
    rows = all_rows(merged)
    assert rows.num_rows == 20 * 3 + 25 * 2 + 60
    for name in ("observation.state", "action", "timestamp", "frame_index", "episode_index",
                 "index", "task_index"):  # fmt: skip
        column = rows.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
            column = column.flatten()
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        values = values.reshape(rows.num_rows, -1)
        assert stats[name]["count"] == [rows.num_rows]
        for key, want in numpy_stats(values).items():
            np.testing.assert_allclose(stats[name][key], want, rtol=1e-12, atol=0,
                                       err_msg=f"{name} {key}")  # fmt: skip
    for k, camera in enumerate(CAMS):
        raw = [f[k] for name in ("a", "b") for episode in raw_frames(name) for f in episode]
        pixels = np.concatenate([np.stack(raw), reference_pixels(camera)])
        per_channel = pixels.reshape(-1, 3).T.astype(np.float64) / 255.0
        n = per_channel.shape[1]
        assert stats[camera]["count"] == [n]
        wanted = numpy_stats(per_channel, channels_first=True)
        # numpy's float sums over millions of pixels round; integer sums are exact
        sums = pixels.reshape(-1, 3).astype(np.int64).sum(axis=0)
        squares = (pixels.reshape(-1, 3).astype(np.int64) ** 2).sum(axis=0)
        wanted["mean"] = np.array([int(s) / n / 255 for s in sums])
        wanted["std"] = np.array([np.sqrt((n * int(q) - int(s) ** 2) / (n * n)) / 255
                                  for s, q in zip(sums, squares, strict=True)])  # fmt: skip
        for key, want in wanted.items():
            got = np.asarray(stats[camera][key]).reshape(-1)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=f"{camera} {key}")


def test_indices_and_tasks_are_renumbered(merged, sources):
    rows = all_rows(merged)
    episodes = episodes_of(merged)
    assert [e["episode_index"] for e in episodes] == list(range(7))
    assert rows.column("index").to_pylist() == list(range(170))
    tasks = pq.read_table(merged / "meta/tasks.parquet")
    texts = tasks.column("__index_level_0__").to_pylist()
    assert texts == ["pick", "place", "stack", "synthetic task"]
    expected = []  # each row's task text, as its source says
    for source in sources:
        source_texts = pq.read_table(source / "meta/tasks.parquet").column(
            "__index_level_0__").to_pylist()  # fmt: skip
        for index in all_rows(source).column("task_index").to_pylist():
            expected.append(source_texts[index])
    assert [texts[i] for i in rows.column("task_index").to_pylist()] == expected
    for e in episodes:
        ours = rows.filter(pa.compute.equal(rows.column("episode_index"), e["episode_index"]))
        assert ours.num_rows == e["length"]
        assert ours.column("index")[0].as_py() == e["dataset_from_index"]
        assert set(texts[i] for i in ours.column("task_index").to_pylist()) == set(e["tasks"])
        for key in ("episode_index", "index", "task_index"):
            values = ours.column(key).to_numpy()
            assert e[f"stats/{key}/min"] == [values.min()], key
            assert e[f"stats/{key}/max"] == [values.max()], key


def test_videos_are_the_sources_bytes_and_verify_passes(merged, sources):
    copied = sorted((merged / "videos").rglob("*.mp4"))
    originals = sorted(p for s in sources for p in (s / "videos").rglob("*.mp4"))
    assert sorted(p.read_bytes() for p in copied) == sorted(p.read_bytes() for p in originals)
    report = verify_dataset(merged, decode=True)
    assert report.ok, report.text()
    assert (report.episodes, report.frames) == (7, 170)


def test_incompatible_source_is_refused_naming_it_and_the_feature(sources, tmp_path, capsys):
    odd = tmp_path / "odd"
    shutil.copytree(REFERENCE, odd)
    info = json.loads((odd / "meta/info.json").read_text())
    info["features"]["action"]["shape"] = [7]
    (odd / "meta/info.json").write_text(json.dumps(info))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=f"{odd}: feature 'action' is .*shape \\[7\\]"):
        merge(out, [sources[0], odd])
    info["features"]["action"]["shape"], info["fps"] = [6], 15
    (odd / "meta/info.json").write_text(json.dumps(info))
    assert cli(["merge", str(out), str(sources[0]), str(odd)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(odd) in err[0] and "fps 15" in err[0], err
    assert not out.exists() and not any(tmp_path.glob(".out.merging"))


def test_existing_output_is_refused(sources, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        merge(tmp_path / "out", sources)
    assert (tmp_path / "out" / "x").read_text() == "mine"


class StopAfterOneSource(Fanout):
    """Copies the first source, then stops as a Ctrl-C would."""

    def map(self, fn, items, advance=None, weights=None):
        if hasattr(fn, "plan") and len(items) > 1:  # the copying step
            fn(items[0])
            raise KeyboardInterrupt
        return super().map(fn, items, advance, weights)


def test_an_interrupted_merge_resumes_only_for_the_same_sources(sources, merged, tmp_path):
    out, said = tmp_path / "out", []
    with pytest.raises(KeyboardInterrupt):
        merge(out, sources, StopAfterOneSource())
    assert not out.exists() and (tmp_path / ".out.merging").is_dir()
    report = merge(out, sources, announce=said.append)
    assert report.resumed == 1 and "resuming an interrupted merge" in said[0], said
    assert (out / "meta/stats.json").read_bytes() == (merged / "meta/stats.json").read_bytes()
    changed = shutil.copytree(sources[0], tmp_path / "a2")
    other = tmp_path / "other"
    with pytest.raises(KeyboardInterrupt):
        merge(other, [changed, *sources[1:]], StopAfterOneSource())
    info = json.loads((changed / "meta/info.json").read_text())
    (changed / "meta/info.json").write_text(json.dumps({**info, "robot_type": "changed"}))
    said.clear()
    report = merge(other, [changed, *sources[1:]], announce=said.append)
    assert report.resumed == 0 and "removing" in said[0], said
    assert verify_dataset(other).ok
