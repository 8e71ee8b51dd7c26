"""Crashes, failed and refused commits, discards and a full disk leave the last committed
dataset."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe.dataset import episode_commit, layout
from shmpipe.dataset import info as info_module
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.errors import DatasetError
from tests.helpers.dataset_writer import (
    CAMERAS,
    FEATURES,
    Recorded,
    assert_loadable,
    assert_stats_equal,
    failing_open,
    file_digests,
    numpy_stats,
    open_writer,
    read_json,
    record_episode,
)


# -- failures and crashes ----------------------------------------------------------------------
def test_crash_before_info_json_leaves_the_last_committed_dataset(tmp_path, monkeypatch):
    root, recorded = tmp_path / "ds", Recorded()
    with open_writer(root) as w:
        record_episode(w, 12, ["a"], 0, recorded)
        record_episode(w, 6, ["a"], 1, recorded)
    committed = file_digests(root)

    w = open_writer(root)
    # Die at the commit point of episode 2: every other file of it is already written.
    real = episode_commit.rename_together

    def dies_at_info_json(renames):
        assert renames[-1][1].name == "info.json"
        real(renames[:-1])
        raise SystemExit

    monkeypatch.setattr(episode_commit, "rename_together", dies_at_info_json)
    with pytest.raises(SystemExit):
        record_episode(w, 9, ["new task"], 2)
    assert (root / "meta/episodes/chunk-000/file-002.parquet").is_file()
    # ... and the files of an episode that was still being recorded when it died:
    for name in CAMERAS:
        segment = layout.video_path(root, name, 3).with_name("file-003.mp4.partial.000000")
        segment.write_bytes(b"half an mp4")
    (root / "data/chunk-000/file-003.parquet.partial").write_bytes(b"half a parquet")
    w.close()

    with open_writer(root) as w:
        assert (w.next_episode_index, w.next_frame_index) == (2, 18)
    assert_loadable(root)
    # Nothing of episodes 2 and 3 is left: the files are those of episodes 0-1, as they were.
    # stats.json and tasks.parquet, already written for episode 2, count episodes 0-1 again
    # (stats.json's float sums may differ in the last bit: recomputed in another order).
    left = file_digests(root)
    assert set(left) == set(committed)
    assert {k for k in left if left[k] != committed[k]} <= {"meta/stats.json"}
    assert pq.read_table(root / "meta/tasks.parquet").column(1).to_pylist() == ["a"]
    stats = read_json(root / "meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")


def test_failed_commit_changes_nothing_and_the_episode_can_be_committed_again(tmp_path):
    root, recorded = tmp_path / "ds", Recorded()
    with open_writer(root) as w:
        record_episode(w, 10, ["a"], 0, recorded)
        rows, histograms = record_episode(w, 10, ["a"], 1, recorded, commit=False)
        video = layout.video_path(root, "observation.images.cam1", 1)
        video.unlink()
        with pytest.raises(ValueError, match="files not in place"):
            w.commit_episode(1, rows, histograms)
        assert (w.next_episode_index, w.next_frame_index) == (1, 10)
        assert not layout.data_path(root, 1).exists()  # checked before anything is written
        video.write_bytes(b"placeholder mp4")
        w.commit_episode(1, rows, histograms)
    assert read_json(root / "meta/info.json")["total_episodes"] == 2
    stats = read_json(root / "meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")


def test_discarded_episode_leaves_no_trace(tmp_path):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 10, ["a"], 0)
        committed = file_digests(root)
        record_episode(w, 10, ["b"], 1, commit=False)
        for name in CAMERAS:  # as a killed encoder leaves them
            video = layout.video_path(root, name, 1)
            video.with_name(video.name + ".partial.000004").write_bytes(b"segment")
        w.discard_episode(1)
        assert file_digests(root) == committed
        assert w.task_index("c") == 1  # "b" was never committed: its index is free again
        record_episode(w, 10, ["c"], 2)
    tasks = pq.read_table(root / "meta/tasks.parquet").column(1).to_pylist()
    assert tasks == ["a", "c"]
    assert_loadable(root)


def other_rows(features: dict) -> EpisodeRows:
    rows = EpisodeRows(features)
    rows.reserve(10)
    for _ in range(10):
        rows.append({n: np.zeros(shape, np.float32) for n, shape in features.items()}, 0)
    return rows


SPOILED = {  # what is wrong -> (how: episode, rows, histograms -> the same, spoiled; error)
    "episode index": (lambda e, r, h: (5, r, h), "expected episode 1, got 5"),
    "camera frames": (
        lambda e, r, h: (e, r, {k: v * 2 for k, v in h.items()}),
        "counts 20 frames, the data has 10",
    ),
    "missing camera": (
        lambda e, r, h: (e, r, {k: v for k, v in h.items() if k != "observation.images.cam0"}),
        "histograms for ['observation.images.cam1']",
    ),
    "missing feature": (
        lambda e, r, h: (e, other_rows({"observation.state": (6,)}), h),
        "rows have features [observation.state float32 (6,)], the dataset [observation.state "
        "float32 (6,), action float32 (6,)]",
    ),
    "feature width": (
        lambda e, r, h: (e, other_rows({"observation.state": (6,), "action": (7,)}), h),
        "action float32 (7,)], the dataset",
    ),
    "no frames": (lambda e, r, h: (e, EpisodeRows(FEATURES), h), "no frames"),
}


@pytest.mark.parametrize("what", SPOILED)
def test_commit_refuses_an_inconsistent_episode_and_writes_nothing(tmp_path, what):
    spoil, message = SPOILED[what]
    with open_writer(tmp_path / "ds") as w:
        record_episode(w, 10, ["a"], 0)
        before = file_digests(tmp_path / "ds")
        rows, histograms = record_episode(w, 10, ["a"], 1, commit=False)
        with pytest.raises(ValueError) as error:
            w.commit_episode(*spoil(1, rows, histograms))
        assert message in str(error.value)
    after = file_digests(tmp_path / "ds")
    assert {k: after[k] for k in before} == before
    new_files = set(after) - set(before)  # only the caller's own video files
    assert all(k.startswith("videos/") for k in new_files), new_files
    assert read_json(tmp_path / "ds/meta/info.json")["total_episodes"] == 1


# -- a full disk -------------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", ["file-001.parquet", "stats.json", "info.json"])
def test_full_disk_raises_dataset_error_naming_the_file_and_commits_nothing(
    tmp_path, monkeypatch, file_name
):
    root, recorded = tmp_path / "ds", Recorded()
    with open_writer(root) as w:
        record_episode(w, 10, ["a"], 0, recorded)
        committed = file_digests(root)
        rows, histograms = record_episode(w, 10, ["a"], 1, recorded, commit=False)
        with monkeypatch.context() as patch:
            failing_open(patch, file_name)
            with pytest.raises(DatasetError) as error:
                w.commit_episode(1, rows, histograms)
        assert file_name in str(error.value) and "No space left on device" in str(error.value)
        assert isinstance(error.value, RuntimeError)
        assert (w.next_episode_index, w.next_frame_index) == (1, 10)
        assert read_json(root / "meta/info.json")["total_episodes"] == 1
        assert not [p for p in root.rglob("*.partial")]
        w.commit_episode(1, rows, histograms)  # the disk has room again
    assert {k: v for k, v in file_digests(root).items() if k in committed and "meta/" not in k} == {
        k: v for k, v in committed.items() if "meta/" not in k
    }
    stats = read_json(root / "meta/stats.json")
    for name, want in numpy_stats(recorded).items():
        assert_stats_equal(stats[name], want, f"dataset {name}")
    assert_loadable(root)


@pytest.mark.parametrize("root_existed", [False, True])
def test_a_new_dataset_whose_info_json_did_not_reach_the_disk_is_removed(
    tmp_path, monkeypatch, root_existed
):
    """open() creating a dataset fails after info.json is in place (its folder's fsync, a thread
    refused under ulimit -v): nothing of it stays, so the next open may use other settings."""
    root = tmp_path / "ds"
    if root_existed:
        root.mkdir()

    def refused(*_args, **_kwargs):
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patch:
        patch.setattr(info_module, "sync_folders", refused)
        with pytest.raises(RuntimeError, match="new thread"):
            open_writer(root)
    assert root.exists() == root_existed and not (root_existed and any(root.iterdir()))
    with open_writer(root, fps=15) as w:  # other settings: not "recorded with other settings"
        assert w.created and w.next_episode_index == 0


def test_discard_after_a_failed_commit_puts_tasks_and_stats_back(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 10, ["a"], 0)
        committed = file_digests(root)
        rows, histograms = record_episode(w, 10, ["b"], 1, commit=False)
        failing_open(monkeypatch, "info.json")  # tasks.parquet and stats.json were written
        with pytest.raises(DatasetError, match="info.json"):
            w.commit_episode(1, rows, histograms)
        assert file_digests(root) != committed
        w.discard_episode(1)
        assert file_digests(root) == committed
