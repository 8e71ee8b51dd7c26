"""Features of LeRobot's other dtypes (bool, int32, int64, float64) record end to end: stored
as LeRobot 0.6.1 stores them (a (1,) feature as a plain column of its type, an (n,) one as a
fixed-size list; the types read off a dataset LeRobot 0.6.1's own writer made), exact stats over
every row (resume, a rebuild, merge and pack included), `shmpipe verify` clean, and bad values
refused naming the feature while the episode goes on."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shmpipe import ConfigError, FeatureSpec, FrameError, Pipeline, VideoEncoderConfig
from shmpipe.dataset import layout
from shmpipe.tools.merge.merger import merge
from shmpipe.tools.pack.packer import pack
from shmpipe.tools.stats.recompute import restat
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.frames import smooth_frame
from tests.helpers.oracles import numeric_stats

FPS = 30
CAMERAS = {"cam": (48, 64, 3)}
LOW_DELAY = VideoEncoderConfig(vcodec="libx264", preset=None, extra_options={"tune": "zerolatency"})
FEATURES = {
    "state": (2,),  # float32, as ever
    "intervention": ((1,), "bool"),  # DAgger's
    "flags": FeatureSpec((3,), "bool"),  # the same, spelled as the type
    "counts": ((2,), "int64"),
    "mode": ((1,), "int32"),
    "precise": ((2,), "float64"),
}
# what LeRobot 0.6.1's writer (LeRobotDataset.create + add_frame + save_episode) stores for them
ARROW = {
    "state": pa.list_(pa.float32(), 2),
    "intervention": pa.bool_(),
    "flags": pa.list_(pa.bool_(), 3),
    "counts": pa.list_(pa.int64(), 2),
    "mode": pa.int32(),
    "precise": pa.list_(pa.float64(), 2),
}
HF = {
    "intervention": {"dtype": "bool", "_type": "Value"},
    "counts": {"feature": {"dtype": "int64", "_type": "Value"}, "length": 2, "_type": "List"},
    "mode": {"dtype": "int32", "_type": "Value"},
}
BIG = 2**53 + 1  # not a float64: stored exactly or not at all


def row(i: int) -> dict[str, np.ndarray]:
    return {
        "state": np.array([i, -i], np.float32) / 4,
        "intervention": np.array([i % 3 == 0]),
        "flags": np.array([True, i % 2 == 1, False]),
        "counts": np.array([i * 7 - 20, 10**12 + i], np.int64),
        "mode": np.array([i % 4 - 1], np.int32),
        "precise": np.array([0.1 * i, 1e-300 * i]),
    }


def record(pipe: Pipeline, first: int, n: int, fed: list) -> None:
    for i in range(first, first + n):
        values = row(i)
        pipe.add_frame({"cam": smooth_frame(i, 48, 64), **values}, task="pick")
        fed.append(values)
    pipe.finish_episode()


def column(table: pa.Table, name: str) -> np.ndarray:
    """A data column as (rows, width) values of the type it is stored in."""
    values = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(values.type):
        values = values.flatten()
    return values.to_numpy(zero_copy_only=False).reshape(table.num_rows, -1)


def stacked(fed: list, name: str) -> np.ndarray:
    return np.stack([f[name] for f in fed])


def test_typed_features_are_stored_as_lerobot_stores_them_with_exact_stats(tmp_path):
    root, fed = tmp_path / "ds", []
    with Pipeline(root, FPS, CAMERAS, FEATURES, encoder=LOW_DELAY, backend="thread") as pipe:
        record(pipe, 0, 7, fed)
        record(pipe, 7, 1, fed)  # one frame: LeRobot's stats take another route there
    with Pipeline(root, FPS, CAMERAS, FEATURES, encoder=LOW_DELAY, backend="thread") as pipe:
        record(pipe, 8, 2, fed)  # resumed: stats go on exactly
    (root / layout.STATE_PATH).unlink()  # and when they are rebuilt from the files
    with Pipeline(root, FPS, CAMERAS, FEATURES, encoder=LOW_DELAY, backend="thread") as pipe:
        record(pipe, 10, 3, fed)
    info = json.loads((root / "meta/info.json").read_text())["features"]
    assert info["intervention"] == {"dtype": "bool", "shape": [1], "names": None}
    assert {n: (info[n]["dtype"], info[n]["shape"]) for n in FEATURES} == {
        "state": ("float32", [2]), "intervention": ("bool", [1]), "flags": ("bool", [3]),
        "counts": ("int64", [2]), "mode": ("int32", [1]), "precise": ("float64", [2])}  # fmt: skip
    table = pq.read_table(root / "data")
    files = sorted((root / "data").rglob("*.parquet"))
    hf = json.loads(pq.read_schema(files[0]).metadata[b"huggingface"])["info"]["features"]
    assert {n: hf[n] for n in HF} == HF
    for name, arrow_type in ARROW.items():
        assert table.schema.field(name).type == arrow_type, name
        got, want = column(table, name), stacked(fed, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    stats = json.loads((root / "meta/stats.json").read_text())
    for name in FEATURES:
        want = numeric_stats(stacked(fed, name))
        for key, value in want.items():
            np.testing.assert_allclose(stats[name][key], value, rtol=1e-12, err_msg=name + key)
    assert stats["counts"]["max"] == [64, 10**12 + 12] and stats["mode"]["min"] == [-1]
    assert stats["intervention"]["min"] == [0.0] and stats["intervention"]["max"] == [1.0]
    report = verify_dataset(root)
    assert report.ok, [p.line() for p in report.problems]
    assert restat(root, write=False).differences == []  # `shmpipe stats` agrees
    shutil.copytree(root, tmp_path / "copy")
    merged = tmp_path / "merged"
    merge(merged, [root, tmp_path / "copy"], announce=lambda _: None)
    assert verify_dataset(merged).ok
    for name, arrow_type in ARROW.items():
        assert pq.read_table(merged / "data").schema.field(name).type == arrow_type, name
    stats = json.loads((merged / "meta/stats.json").read_text())
    want = numeric_stats(np.concatenate([stacked(fed, "counts")] * 2))
    np.testing.assert_allclose(stats["counts"]["std"], want["std"], rtol=1e-12)
    pack(merged)  # every episode's rows in one data file
    assert len(list((merged / "data").rglob("*.parquet"))) == 1 and verify_dataset(merged).ok
    table = pq.read_table(merged / "data")
    for name in FEATURES:
        assert np.array_equal(column(table, name), np.concatenate([stacked(fed, name)] * 2))


BAD = {
    "0.5 for a bool": ("intervention", np.array([0.5]), r"'intervention'.*bool.*True/False"),
    "2 for a bool": ("intervention", np.array([2]), r"'intervention'.*bool"),
    "a float for an int": ("counts", np.array([1.0, 2.0]), r"'counts'.*int64.*float64"),
    "too big for int32": ("mode", np.array([2**40]), r"'mode'.*do not fit int32"),
    "wrong shape": ("flags", np.array([True, False]), r"'flags'.*shape \(3,\).*\(2,\)"),
    "text": ("precise", "0.1", r"'precise'.*float64"),
    "inf": ("precise", np.array([1.0, np.inf]), r"'precise'.*inf"),
}


def test_bad_values_are_refused_naming_the_feature_and_the_episode_goes_on(tmp_path):
    root, fed = tmp_path / "ds", []
    with Pipeline(root, FPS, CAMERAS, FEATURES, encoder=LOW_DELAY, backend="thread") as pipe:
        for i in range(3):
            pipe.add_frame({"cam": smooth_frame(i, 48, 64), **row(i)}, task="pick")
            fed.append(row(i))
            for name, value, message in BAD.values():
                with pytest.raises(FrameError, match=message):
                    pipe.add_frame({"cam": smooth_frame(i, 48, 64), **row(i), name: value},
                                   task="pick")  # fmt: skip
        # accepted as LeRobot's own values would be: Python bools, 0/1, plain ints
        plain = {"intervention": True, "flags": [1, 0, 1], "mode": 2, "counts": [0, BIG]}
        pipe.add_frame({"cam": smooth_frame(3, 48, 64), **row(3), **plain}, task="pick")
        fed.append({**row(3), "intervention": np.array([True]), "flags": np.array([1, 0, 1], bool),
                    "mode": np.array([2], np.int32), "counts": np.array([0, BIG])})  # fmt: skip
        assert pipe.finish_episode().num_frames == 4
    table = pq.read_table(root / "data")
    for name in FEATURES:
        got, want = column(table, name), stacked(fed, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert verify_dataset(root).ok


@pytest.mark.parametrize("declared, message", [
    (((1,), "float16"), r"'x'.*float16.*not supported.*bool"),
    (((1,), "string"), r"'x'.*string.*not supported"),
    ((1, "bool"), r"'x'.*shape"),
    (((2, 2), "int64"), r"'x'.*vector shape"),
])  # fmt: skip
def test_a_dtype_or_shape_the_dataset_cannot_hold_is_refused_before_anything_is_written(
    tmp_path, declared, message
):
    with pytest.raises(ConfigError, match=message):
        Pipeline(tmp_path / "ds", FPS, CAMERAS, {"x": declared}, backend="thread").start()
    assert not (tmp_path / "ds").exists()


def test_resuming_with_another_dtype_is_refused_naming_it(tmp_path):
    root = tmp_path / "ds"
    with Pipeline(root, FPS, CAMERAS, FEATURES, encoder=LOW_DELAY, backend="thread") as pipe:
        record(pipe, 0, 2, [])
    as_float = {**FEATURES, "intervention": (1,)}
    with pytest.raises(ConfigError, match=r"intervention.*dtype"):
        Pipeline(root, FPS, CAMERAS, as_float, encoder=LOW_DELAY, backend="thread").start()


def test_verify_names_a_scalar_feature_stored_as_a_list_which_lerobot_cannot_load(tmp_path):
    """shmpipe before its feature dtypes stored a (1,) feature as a list of 1, which LeRobot's
    loader fails to cast to its plain column: verify says so, naming the column and file."""
    root = tmp_path / "ds"
    with Pipeline(root, FPS, CAMERAS, FEATURES, encoder=LOW_DELAY, backend="thread") as pipe:
        record(pipe, 0, 3, [])
    assert verify_dataset(root).ok
    path = next((root / "data").rglob("*.parquet"))
    table = pq.read_table(path)
    at = table.schema.get_field_index("intervention")
    as_list = pa.FixedSizeListArray.from_arrays(table.column(at).combine_chunks(), 1)
    pq.write_table(table.set_column(at, pa.field("intervention", as_list.type), as_list), path)
    lines = [p.line() for p in verify_dataset(root).problems]
    assert len(lines) == 1 and "'intervention' stored as fixed_size_list" in lines[0], lines
    assert "cannot load" in lines[0] and path.name in lines[0], lines


def test_verify_accepts_an_n_feature_stored_as_a_plain_list_as_lerobot_aggregate_writes(tmp_path):
    """LeRobot's aggregate_datasets writes (n,) features as list<float>, not a fixed-size list:
    LeRobot loads both alike, so verify accepts either (and still names another element type)."""
    root = tmp_path / "ds"
    with Pipeline(root, FPS, CAMERAS, FEATURES, encoder=LOW_DELAY, backend="thread") as pipe:
        record(pipe, 0, 3, [])
    path = next((root / "data").rglob("*.parquet"))
    table = pq.read_table(path)
    at = table.schema.get_field_index("precise")
    values = table.column(at).combine_chunks().flatten()
    offsets = pa.array(range(0, len(values) + 1, 2), pa.int32())
    for value_type, ok in [(values.type, True), (pa.float32(), False)]:
        plain = pa.ListArray.from_arrays(offsets, values.cast(value_type))
        pq.write_table(table.set_column(at, pa.field("precise", plain.type), plain), path)
        lines = [p.line() for p in verify_dataset(root).problems]
        assert (lines == []) if ok else ("'precise' stored as list" in " ".join(lines)), lines
