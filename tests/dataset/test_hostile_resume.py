"""Resuming a damaged or hostile dataset: a clear ConfigError naming the file, never a raw
pyarrow/Python error or a hang, and clean-up never deletes through a symlink out of the root."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shmpipe import ConfigError, Pipeline
from shmpipe.dataset import layout
from tests.helpers.hostile import (
    CAMERAS,
    FEATURES,
    FPS,
    TASKS,
    edit_info,
    make_fifo,
    power_cut,
)


@pytest.fixture
def root(hostile_root) -> Path:
    return hostile_root


def start(root: Path) -> None:
    with Pipeline(root, fps=FPS, cameras=CAMERAS, features=FEATURES, backend="thread"):
        pass


def outside_folder(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A folder beside the dataset holding files clean-up would delete if it were `data/`."""
    outside = tmp_path / "precious"
    chunk = outside / "chunk-000"
    chunk.mkdir(parents=True)
    files = [chunk / "file-005.parquet", chunk / "file-999.parquet", chunk / "notes.partial"]
    for path in files:
        path.write_text("keep me")
    return outside, files


@pytest.mark.parametrize("folder", ["data", "meta/episodes", "videos/observation.images.front"])
def test_resume_refuses_a_dataset_folder_that_is_a_symlink_out_of_the_root(root, tmp_path, folder):
    """Before: start()'s clean-up followed `data/` -> another folder and deleted every file
    numbered >= the episode count and every `.partial` there."""
    outside, files = outside_folder(tmp_path)
    shutil.copytree(root / folder, outside, dirs_exist_ok=True)
    shutil.rmtree(root / folder)
    (root / folder).symlink_to(outside)
    with pytest.raises(ConfigError, match=f"{folder}.* leads outside the dataset"):
        start(root)
    assert all(p.read_text() == "keep me" for p in files)


def test_resume_refuses_a_chunk_folder_that_is_a_symlink_out_of_the_root(root, tmp_path):
    outside, files = outside_folder(tmp_path)
    (root / "data/chunk-001").symlink_to(outside / "chunk-000")
    with pytest.raises(ConfigError, match="chunk-001 leads outside the dataset"):
        start(root)
    assert all(p.read_text() == "keep me" for p in files)


def test_a_pack_journal_naming_files_outside_the_root_deletes_nothing(root, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    journal = {"state": "swapping", "renames": [], "remove": ["../victim.txt"]}
    (root / layout.SHMPIPE_DIR / "pack.json").write_text(json.dumps(journal))
    with pytest.raises(ConfigError, match="pack.json"):
        start(root)
    assert victim.read_text() == "keep me"


@pytest.mark.timeout(20)
def without_state(root: Path, junk: str) -> None:
    """`junk` made unreadable, and the resume state gone, so that opening rebuilds the stats
    from the files (a valid state means start() reads neither data nor histograms)."""
    (root / junk).write_bytes(b"PAR1junk")
    (root / "meta/shmpipe/state.npz").unlink()


@pytest.mark.parametrize(
    "damage, words",
    [
        (power_cut, "tasks.parquet: is empty \\(0 bytes\\)"),
        (lambda r: make_fifo(r, TASKS), "tasks.parquet: is a FIFO"),
        (lambda r: make_fifo(r, "meta/stats.json"), None),  # rewritten from the episodes
        (lambda r: edit_info(r, features=["a"]), "features is \\['a'\\]"),
        (lambda r: edit_info(r, shmpipe=[1]), "not a dataset written by shmpipe"),
        (lambda r: edit_info(r, total_episodes="2"), "total_episodes is '2'"),
        (lambda r: (r / "meta/info.json").write_text("[" * 100000), "nested too deep"),
        (
            lambda r: without_state(r, "data/chunk-000/file-001.parquet"),
            "file-001.parquet: unreadable",
        ),
        (
            lambda r: without_state(r, "meta/shmpipe/image_histograms/chunk-000/file-000.npz"),
            "file-000.npz: unreadable",
        ),
    ],  # fmt: skip
    ids=[
        "power cut",
        "FIFO tasks",
        "FIFO stats",
        "features list",
        "shmpipe list",
        "totals as strings",
        "deep info.json",
        "junk data file",
        "junk histograms",
    ],  # fmt: skip
)
def test_resume_of_a_damaged_dataset_is_a_config_error_naming_the_file(root, damage, words):
    """Before: ArrowInvalid ("tasks.parquet: Parquet file size is 0 bytes"), AttributeError,
    TypeError, RecursionError, or a hang on a FIFO."""
    damage(root)
    if words is None:
        start(root)
        return
    with pytest.raises(ConfigError, match=words):
        start(root)
