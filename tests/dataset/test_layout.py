"""layout: every name a file has before it is published is one no reader's glob matches, and
every published name is one it does."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from shmpipe.dataset import files, layout
from shmpipe.errors import DatasetError
from shmpipe.video import segments

# LeRobot's loader's globs (its own patterns, not ours)
READERS = ("data/*/*.parquet", "meta/episodes/*/*.parquet", "videos/*/*/*.mp4")
ROOT = Path("/ds")


def published() -> list[Path]:
    return [layout.data_path(ROOT, 1234), layout.episodes_path(ROOT, 7),
            layout.video_path(ROOT, "observation.images.front", 1234)]  # fmt: skip


def read_by_a_reader(path: Path) -> bool:
    relative = PurePosixPath(path.relative_to(ROOT).as_posix())
    return any(relative.match(glob) and len(relative.parts) == glob.count("/") + 1
               for glob in READERS)  # fmt: skip


def test_published_names_are_what_readers_glob_and_number_back():
    for path in published():
        assert read_by_a_reader(path), path
    assert [layout.file_number(p) for p in published()] == [1234, 7, 1234]


@pytest.mark.parametrize("unpublished", [
    layout.staged,
    lambda p: segments.segment_path(layout.staged(p), 30),
    lambda p: segments.joining_path(layout.staged(p)),
    lambda p: p.with_name(p.name + layout.PACKING),
])  # fmt: skip
def test_no_unpublished_name_is_read_by_a_reader_and_each_is_temporary(unpublished):
    for path in published():
        name = unpublished(path)
        assert not read_by_a_reader(name), name
        assert layout.is_temporary(name.name), name
        assert layout.file_number(name) == layout.file_number(path)


def test_rename_together_names_the_file_it_could_not_rename(tmp_path):
    a, b = tmp_path / "a.partial", tmp_path / "b.partial"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    with pytest.raises(DatasetError, match="missing/b: .*No such file"):
        files.rename_together([(a, tmp_path / "a"), (b, tmp_path / "missing" / "b")])
    assert (tmp_path / "a").read_bytes() == b"a"  # the renames before it stay done
