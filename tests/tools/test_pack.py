"""pack: per-episode files merged into LeRobot's size-bounded files, without changing a pixel
or a row, crash-safe, and recording resumes into the packed dataset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe import ConfigError, Pipeline
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.tools.cli import main as cli
from shmpipe.tools.pack.packer import pack
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.frames import textured_frame
from tests.helpers.media import decode_video

FPS = 30
CAMS = {"observation.images.front": (48, 64, 3), "observation.images.wrist": (48, 64, 3)}
FEATS = {"observation.state": (2,)}
EPISODES, FRAMES = 5, 10


def record(root: Path, episodes: int, first_seed: int = 0) -> None:
    with Pipeline(root, fps=FPS, cameras=CAMS, features=FEATS, backend="thread") as pipe:
        for e in range(episodes):
            for i in range(FRAMES):
                seed = (first_seed + e) * 10
                frame = {n: textured_frame(i, 48, 64, seed + k) for k, n in enumerate(CAMS)}
                state = np.full(2, seed * 100 + i, np.float32)
                pipe.add_frame({**frame, "observation.state": state}, task=f"task {e % 2}")
            pipe.finish_episode()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("recorded") / "ds"
    record(root, EPISODES)
    return root


@pytest.fixture
def root(recorded, tmp_path) -> Path:
    copy = tmp_path / "ds"
    shutil.copytree(recorded, copy)
    return copy


def limits(root: Path) -> tuple[float, float]:
    """Limits (MB) that put about two episodes in a file: several files of each kind."""
    data = pq.read_metadata(root / "data/chunk-000/file-000.parquet")
    data_bytes = sum(
        data.row_group(0).column(c).total_uncompressed_size
        for c in range(data.row_group(0).num_columns)
    )
    video_bytes = max(p.stat().st_size for p in (root / "videos").rglob("file-000.mp4"))
    return 2.5 * data_bytes / 2**20, 2.5 * video_bytes / 2**20


def episodes_of(root: Path) -> list[dict]:
    files = sorted((root / "meta/episodes").rglob("*.parquet"))
    return sorted((r for f in files for r in pq.read_table(f).to_pylist()),
                  key=lambda r: r["episode_index"])  # fmt: skip


def contents(root: Path) -> dict[int, dict]:
    """Each episode's decoded frames per camera (at its from/to window) and its data rows."""
    info = json.loads((root / "meta/info.json").read_text())
    out, decoded = {}, {}
    for e in episodes_of(root):
        data = root / info["data_path"].format(
            chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]
        )
        rows = pq.read_table(data).to_pylist()
        got = {"rows": [r for r in rows if r["episode_index"] == e["episode_index"]]}
        for cam in CAMS:
            key = f"videos/{cam}/"
            path = root / info["video_path"].format(
                video_key=cam, chunk_index=e[key + "chunk_index"], file_index=e[key + "file_index"]
            )
            if path not in decoded:
                decoded[path] = decode_video(path)
            frames, times = decoded[path]
            start, end = e[key + "from_timestamp"], e[key + "to_timestamp"]
            inside = [i for i, t in enumerate(times) if start - 1e-4 <= t < end - 1e-4]
            assert [round((times[i] - start) * FPS, 3) for i in inside] == list(range(e["length"]))
            got[cam] = np.stack([frames[i] for i in inside])
        out[e["episode_index"]] = got
    return out


def assert_same_contents(before: dict, after: dict) -> None:
    assert sorted(before) == sorted(after)
    for e, episode in before.items():
        assert after[e]["rows"] == episode["rows"], f"episode {e}: data rows changed"
        for cam in CAMS:
            assert np.array_equal(after[e][cam], episode[cam]), f"episode {e} {cam}: pixels changed"


def files(root: Path, folder: str) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*") if p.is_file())


def open_writer(root: Path) -> DatasetWriter:
    """DatasetWriter.open with the dataset's own settings (as Pipeline.start opens it)."""
    info = json.loads((root / "meta/info.json").read_text())
    video = info["shmpipe"]["video_encoder"]
    return DatasetWriter.open(root, FPS, CAMS, FEATS, video)


def assert_verifies(root: Path) -> None:
    report = verify_dataset(root, decode=True)
    assert report.ok, report.text()


def test_pack_merges_files_and_keeps_every_pixel_and_row(root):
    before = contents(root)
    meta_before = {n: (root / "meta" / n).read_bytes() for n in ("info.json", "stats.json")}
    count_before = sum(len(files(root, f)) for f in ("data", "videos", "meta/episodes"))

    report = pack(root, *limits(root))

    assert (report.files_before, report.files_after) == (count_before, report.files_after)
    assert report.files_after < report.files_before
    for folder in ("data", "videos/observation.images.front", "videos/observation.images.wrist"):
        assert 2 <= len(files(root, folder)) < EPISODES, folder
    assert files(root, "meta/episodes") == ["meta/episodes/chunk-000/file-000.parquet"]
    rows = episodes_of(root)
    assert [r["data/file_index"] for r in rows] == [0, 0, 1, 1, 2]
    assert rows[1]["videos/observation.images.front/from_timestamp"] == pytest.approx(FRAMES / FPS)
    assert_same_contents(before, contents(root))
    assert {n: (root / "meta" / n).read_bytes() for n in meta_before} == meta_before
    assert_verifies(root)
    verify = subprocess.run([sys.executable, "-m", "shmpipe", "verify", str(root)])
    assert verify.returncode == 0


def test_recording_resumes_into_a_packed_dataset_and_packs_again(root):
    pack(root, *limits(root))
    record(root, 2, first_seed=EPISODES)
    assert_verifies(root)
    assert "data/chunk-000/file-005.parquet" in files(root, "data")  # file index = episode index
    before = contents(root)
    pack(root, *limits(root))
    assert_verifies(root)
    assert_same_contents(before, contents(root))
    assert len(files(root, "data")) < EPISODES + 2


def test_pack_is_refused_while_a_recorder_holds_the_dataset(root, capsys):
    with Pipeline(root, fps=FPS, cameras=CAMS, features=FEATS, backend="thread"):
        with pytest.raises(ConfigError, match="recorder holds"):
            pack(root)
        assert cli(["pack", str(root)]) == 1
    assert "recorder holds" in capsys.readouterr().err
    assert cli(["pack", str(root / "missing")]) == 1
    assert cli(["pack", str(root)]) == 0


def test_crash_at_any_step_of_pack_leaves_a_dataset_that_opens_and_verifies(
    recorded, tmp_path, monkeypatch
):
    expected = contents(recorded)
    real_replace, real_unlink = os.replace, os.unlink
    steps = 0

    def counting(real):
        def call(*args, **kwargs):
            nonlocal steps
            steps += 1
            if steps > crash_after:
                raise OSError("simulated crash")
            return real(*args, **kwargs)

        return call

    crash_after = 10**9
    probe = tmp_path / "probe"
    shutil.copytree(recorded, probe)
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", counting(real_replace))
        patch.setattr(os, "unlink", counting(real_unlink))
        pack(probe, *limits(probe))
    total = steps
    assert total > 10, total
    for crash_after in range(total):
        root = tmp_path / f"crash{crash_after}"
        shutil.copytree(recorded, root)
        steps = 0
        with monkeypatch.context() as patch, pytest.raises(OSError):
            patch.setattr(os, "replace", counting(real_replace))
            patch.setattr(os, "unlink", counting(real_unlink))
            pack(root, *limits(root))
        open_writer(root).close()  # opening finishes or undoes the interrupted pack
        assert not list(root.rglob("*.packing")), f"crash after {crash_after} steps"
        report = verify_dataset(root)
        assert report.ok, f"crash after {crash_after} steps: {report.text()}"
        assert_same_contents(expected, contents(root))


def test_a_reader_sees_no_row_twice_at_any_step_of_the_swap(root, monkeypatch):
    """A pack killed mid-swap leaves files as they stand at that step until the next open: at
    no step does a reader globbing data/*/*.parquet find a row twice (old files go before the
    packed ones are renamed in, the highest file number first)."""
    real_replace, real_unlink = os.replace, os.unlink
    twice: list[str] = []

    def rows_seen_twice(what: str) -> None:
        indices = [i for p in root.glob("data/*/*.parquet")
                   for i in pq.read_table(p, columns=["index"]).column(0).to_pylist()]  # fmt: skip
        if len(indices) != len(set(indices)):
            twice.append(f"after {what}: {len(indices) - len(set(indices))} rows twice")

    def replace(source, final):
        real_replace(source, final)
        rows_seen_twice(f"renaming {Path(final).relative_to(root)}")

    def unlink(path, *args, **kwargs):
        real_unlink(path, *args, **kwargs)
        rows_seen_twice(f"deleting {Path(path).relative_to(root)}")

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)
    pack(root, *limits(root))
    monkeypatch.undo()
    assert len(list(root.glob("data/*/*.parquet"))) < EPISODES  # it did pack
    assert twice == []
