"""EpisodeCommit's steps: what each writes, in which order, and what a step out of order does."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shmpipe.dataset import episode_commit, files, layout
from shmpipe.dataset.episode_commit import CommitState
from shmpipe.errors import DatasetError, UsageError
from tests.helpers.dataset_writer import (
    CAMERAS,
    failing_open,
    file_digests,
    open_writer,
    read_json,
    record_episode,
)
from tests.helpers.globbing_reader import snapshot

STAGED_STEPS = [("write_data", CommitState.NEW), ("write_meta", CommitState.DATA_STAGED),
                ("publish", CommitState.META_STAGED)]  # fmt: skip


def staged_episode(w, tasks=("a",), seed=1):
    """Episode 1 staged as the recorder stages it: data file, then videos at their staged
    names, and the rows' histograms kept for write_meta."""
    rows, histograms = record_episode(w, 7, list(tasks), seed, commit=False)
    for name in CAMERAS:  # record_episode put them in place: move them to the encoder's name
        final = layout.video_path(w.root, name, 1)
        final.rename(layout.staged_video_path(w.root, name, 1))
    return w.stage_episode(1, rows), histograms


def visible(root: Path) -> set[str]:
    """Every file a reader that globs (LeRobot's patterns) or reads meta/ by name sees."""
    found = {*root.glob("data/*/*.parquet"), *root.glob("meta/episodes/*/*.parquet"),
             *root.glob("videos/*/*/*.mp4"), *root.glob("meta/*.json"),
             *root.glob("meta/*.parquet")}  # fmt: skip
    return {str(p.relative_to(root)) for p in found}


def test_commit_writes_the_data_file_once_and_reports_its_timings(tmp_path, monkeypatch):
    reads = []
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: reads.append(a) or None)
    monkeypatch.setattr(pq, "read_metadata", lambda *a, **k: reads.append(a) or None)
    with open_writer(tmp_path / "ds") as w:
        committed = record_episode(w, 12, ["a"], 0)
    assert reads == [], "commit_episode read a file back"
    monkeypatch.undo()
    assert committed.data_path == str(layout.data_path(tmp_path / "ds", 0))
    data = pq.read_table(committed.data_path)
    assert data.column("index").to_pylist() == list(range(12))
    assert set(committed.timings) == {"data", "stats", "meta", "commit", "total"}
    assert committed.timings["commit"] <= committed.timings["meta"]
    assert all(t >= 0 for t in committed.timings.values())
    parts = committed.timings["data"] + committed.timings["stats"] + committed.timings["meta"]
    assert parts <= committed.timings["total"]
    assert list(committed.stats) == list(read_json(tmp_path / "ds/meta/info.json")["features"])


def test_a_commit_syncs_every_file_and_folder_it_changed_and_parents_only_of_new_folders(
    tmp_path, monkeypatch
):
    """Durable before counted, without re-syncing what is durable already: the first commit
    syncs up to the root's parent (its folders are new), a later one only the folders that
    gained a file, and the videos (files it writes itself are synced as they are written)."""
    synced = []
    real = files._fsync
    monkeypatch.setattr(files, "_fsync", lambda p, flags=0: synced.append(p) or real(p, flags))
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
        first = set(synced)
        synced.clear()
        record_episode(w, 4, ["a"], 1)
    assert {root, tmp_path, root / "videos", root / "meta"} <= first
    folders = {p for p in synced if p.is_dir()}
    changed = {layout.data_path(root, 1).parent, layout.episodes_path(root, 1).parent,
               layout.histograms_path(root, 1).parent, root / "meta", root / layout.SHMPIPE_DIR,
               *(layout.video_path(root, name, 1).parent for name in CAMERAS)}  # fmt: skip
    assert folders == changed
    assert {layout.video_path(root, name, 1) for name in CAMERAS} <= set(synced)


def test_each_step_runs_only_from_the_state_the_last_one_left(tmp_path):
    with open_writer(tmp_path / "ds") as w:
        record_episode(w, 5, ["a"], 0)
        staged, histograms = staged_episode(w)
        assert staged.state is CommitState.DATA_STAGED
        with pytest.raises(UsageError, match="publish needs the state 'metadata staged', the "
                           "commit is 'data staged'"):  # fmt: skip
            staged.publish()
        with pytest.raises(UsageError, match="write_data needs the state 'new', the commit is "
                           "'data staged'"):  # fmt: skip
            staged.write_data()
        staged.write_meta(histograms)
        assert staged.state is CommitState.META_STAGED
        with pytest.raises(UsageError, match="write_meta needs the state 'data staged'"):
            staged.write_meta(histograms)
        w.commit_staged(staged)
        assert staged.state is CommitState.PUBLISHED
        for step, expected in STAGED_STEPS:
            with pytest.raises(UsageError, match=f"needs the state '{expected.value}', the "
                               "commit is 'published'"):  # fmt: skip
                getattr(staged, step)(*([histograms] if step == "write_meta" else []))
        with pytest.raises(UsageError, match="sync_early needs the data staged"):
            staged.sync_early()
    assert read_json(tmp_path / "ds/meta/info.json")["total_episodes"] == 2


def test_nothing_of_an_episode_is_visible_until_publish_and_all_of_it_after(tmp_path):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
        before = visible(root)
        digests = file_digests(root)
        staged, histograms = staged_episode(w, tasks=["a", "a new task"])
        staged.sync_early()
        staged.write_meta(histograms)
        staged.sync_early()
        assert visible(root) == before
        assert {k: v for k, v in file_digests(root).items() if k in digests} == digests
        assert not snapshot(root, len(CAMERAS)).problems
        committed = w.commit_staged(staged)
    assert committed.videos == {n: layout.video_path(root, n, 1) for n in CAMERAS}
    new = visible(root) - before
    assert new == {str(p.relative_to(root)) for p in [
        layout.data_path(root, 1), layout.episodes_path(root, 1),
        *(layout.video_path(root, n, 1) for n in CAMERAS)]}  # fmt: skip
    assert not snapshot(root, len(CAMERAS)).problems
    assert not [p for p in root.rglob("*") if layout.is_temporary(p.name)]
    assert pq.read_table(root / layout.TASKS_PATH).num_rows == 2


def test_publish_renames_every_staged_file_in_one_call_info_json_last(tmp_path, monkeypatch):
    """One rename_together call, after every staged file and its folder were synced; the new
    files readers glob come right before info.json; the folders are synced after the renames
    (durable on return)."""
    events = []
    real_fsync, real_renames = files._fsync, episode_commit.rename_together
    monkeypatch.setattr(files, "_fsync",
                        lambda p, flags=0: events.append(("sync", p)) or real_fsync(p, flags))
    monkeypatch.setattr(episode_commit, "rename_together",
                        lambda renames: events.append(("renames", renames))
                        or real_renames(renames))  # fmt: skip
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
        staged, histograms = staged_episode(w)
        events.clear()
        staged.write_meta(histograms)
        w.commit_staged(staged)
    at = [i for i, (kind, _) in enumerate(events) if kind == "renames"]
    assert len(at) == 1
    renames = events[at[0]][1]
    finals = [final for _, final in renames]
    assert finals[-1] == root / layout.INFO_PATH
    globbed = [layout.data_path(root, 1), layout.episodes_path(root, 1),
               *(layout.video_path(root, n, 1) for n in CAMERAS)]  # fmt: skip
    assert sorted(finals[-1 - len(globbed):-1]) == sorted(globbed)
    synced_before = {p for kind, p in events[: at[0]] if kind == "sync"}
    for source, _ in renames:  # files we wrote are synced as written (write_unpublished)
        assert source.parent in synced_before, source
    for name in CAMERAS:  # an encoder's are synced here
        assert layout.staged_video_path(root, name, 1) in synced_before
    synced_after = {p for kind, p in events[at[0]:] if kind == "sync"}
    assert {f.parent for f in finals} <= synced_after


def test_a_failed_step_leaves_the_commit_failed_and_removes_what_it_staged(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
        staged, histograms = staged_episode(w)
        with monkeypatch.context() as patch:
            failing_open(patch, "info.json")
            with pytest.raises(DatasetError, match="info.json"):
                staged.write_meta(histograms)
        assert staged.state is CommitState.FAILED
        left = [p.name for p in root.rglob("*") if layout.is_temporary(p.name)]
        assert sorted(left) == sorted(["file-001.mp4.partial"] * len(CAMERAS))  # the encoders'
        with pytest.raises(UsageError, match="the commit is 'failed'"):
            staged.publish()
        w.discard_episode(1)
        assert not [p for p in root.rglob("*") if layout.is_temporary(p.name)]
        assert w.commit_episode(1, *record_episode(w, 4, ["a"], 2, commit=False)).length == 4


def test_commit_episode_publishes_videos_left_at_their_staged_names(tmp_path):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
        rows, histograms = record_episode(w, 7, ["a"], 1, commit=False)
        for name in CAMERAS:
            layout.video_path(root, name, 1).rename(layout.staged_video_path(root, name, 1))
        assert w.commit_episode(1, rows, histograms).videos == {
            n: layout.video_path(root, n, 1) for n in CAMERAS}  # fmt: skip
    assert all(layout.video_path(root, n, 1).is_file() for n in CAMERAS)
    assert not [p for p in root.rglob("*") if layout.is_temporary(p.name)]
