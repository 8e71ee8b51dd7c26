"""Resuming a dataset: indices continue, nothing is rewritten, a second or mismatched writer and a
refused open change nothing."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from shmpipe.dataset import layout
from shmpipe.errors import ConfigError, UsageError
from tests.helpers.dataset_writer import (
    Recorded,
    assert_loadable,
    assert_stats_equal,
    every_file,
    file_digests,
    numpy_stats,
    open_writer,
    read_json,
    record_episode,
    unfinished_files,
)


# -- resume ------------------------------------------------------------------------------------
def test_resume_continues_indices_and_rewrites_nothing(tmp_path):
    root, recorded = tmp_path / "ds", Recorded()
    with open_writer(root) as w:
        record_episode(w, 15, ["pick"], 0, recorded)
        record_episode(w, 10, ["place"], 1, recorded)
    before = file_digests(root)

    with open_writer(root) as w:
        assert (w.next_episode_index, w.next_frame_index) == (2, 25)
        assert w.task_index("place") == 1
        assert w.task_index("wave") == 2
        assert file_digests(root) == before  # opening changes nothing
        record_episode(w, 8, ["wave", "pick"], 2, recorded)

    after = file_digests(root)
    changed = {p for p in before if after[p] != before[p]}
    assert changed == {"meta/info.json", "meta/stats.json", "meta/tasks.parquet",
                       "meta/shmpipe/state.npz"}  # fmt: skip
    info = read_json(root / "meta/info.json")
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 33, 3)
    assert info["splits"] == {"train": "0:3"}
    data = pq.read_table(root / "data/chunk-000/file-002.parquet")
    assert data.column("index").to_pylist() == list(range(25, 33))
    assert set(data.column("episode_index").to_pylist()) == {2}
    # Stats cover the episodes before the resume too: the accumulators were read back.
    stats = read_json(root / "meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")
    assert_loadable(root)


def test_new_dataset_needs_an_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        open_writer(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_second_writer_on_the_same_dataset_is_refused(tmp_path):
    with open_writer(tmp_path / "ds"):
        with pytest.raises(RuntimeError, match="another writer"):
            open_writer(tmp_path / "ds")
    open_writer(tmp_path / "ds").close()


@pytest.mark.parametrize("refusal", ["another writer", "other settings", "not a dataset"])
def test_a_refused_open_changes_nothing_on_disk(tmp_path, refusal):
    root = tmp_path / "ds"
    running = None
    if refusal == "not a dataset":
        root.mkdir()
        (root / "notes.txt").write_text("mine")
    else:
        running = open_writer(root)
        record_episode(running, 5, ["a"], 0)
        if refusal == "other settings":
            running.close()
            (root / layout.LOCK_PATH).unlink()  # e.g. a copied dataset: not even a lock appears
    for path in unfinished_files(root):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written " + path.name.encode())
    before = every_file(root)
    folders = sorted(p for p in root.rglob("*") if p.is_dir())

    expected = {"another writer": UsageError, "other settings": ConfigError}
    with pytest.raises(expected.get(refusal, ConfigError)):
        open_writer(root, fps=15) if refusal == "other settings" else open_writer(root)

    assert every_file(root) == before, "a refused open changed files"
    assert sorted(p for p in root.rglob("*") if p.is_dir()) == folders
    if refusal != "another writer":
        assert not (root / layout.LOCK_PATH).exists()
    if running is not None:
        running.close()
