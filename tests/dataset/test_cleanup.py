"""remove_unfinished: what a killed recorder left goes when the dataset is opened."""

from __future__ import annotations

from shmpipe.dataset import layout
from shmpipe.dataset.writer import remove_unfinished
from tests.helpers.dataset_writer import (
    file_digests,
    open_writer,
    record_episode,
    unfinished_files,
)


def test_resume_removes_what_a_killed_recorder_left(tmp_path):
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
    committed = file_digests(root)
    for path in unfinished_files(root):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written")
    layout.data_path(root, 1).write_bytes(b"never committed")
    open_writer(root).close()
    assert file_digests(root) == committed
    remove_unfinished(root, 1)  # the same path, called again, finds nothing to do
    assert file_digests(root) == committed


def test_opening_finishes_the_renames_of_a_committed_episode_and_removes_uncommitted_ones(
    tmp_path,
):
    """Where a file system keeps info.json's rename but not an earlier one across a power cut,
    the committed episode's file is still whole under its staged name (synced before info.json
    was renamed): opening renames it into place. An uncounted episode's staged file goes."""
    root = tmp_path / "ds"
    with open_writer(root) as w:
        record_episode(w, 5, ["a"], 0)
        record_episode(w, 4, ["a"], 1)
    committed = file_digests(root)
    for path in (layout.data_path(root, 1), layout.video_path(root, "observation.images.cam0", 1)):
        path.rename(layout.staged(path))
    uncounted = layout.staged(layout.data_path(root, 2))
    uncounted.write_bytes(b"staged, never counted")
    with open_writer(root) as w:
        assert w.next_episode_index == 2
    assert file_digests(root) == committed
