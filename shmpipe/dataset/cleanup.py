"""How unfinished files leave a dataset: one function, called by the writer holding the lock.

Temporaries (layout.is_temporary: staged files, an encoder's segments and joins, pack's
files) and files of episodes the dataset does not count are removed (a committed episode's
staged file whose final name is missing is renamed into place instead); on opening, a pack
that was interrupted is first finished (or undone) following its journal. It never deletes
through a symlink that leads out of the root: such a root is refused (ConfigError naming the
folder) before anything is deleted.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from shmpipe.dataset import layout
from shmpipe.dataset.layout import is_temporary
from shmpipe.dataset.pack_journal import finish_pack
from shmpipe.errors import ConfigError


def remove_unfinished(root: Path, committed_episodes: int, opening: bool = False,
                      only: Sequence[int] | None = None) -> None:  # fmt: skip
    """Delete temporaries and every numbered file of episode >= `committed_episodes`; when
    `opening`, also backlog spill files a killed recorder left. `only`: of the numbered files,
    temporaries included, only those of these episodes (others are still being recorded).

    The one cleanup path: on opening a dataset (under its lock) and when an episode is
    discarded. Only chunk folders that can hold such files are listed, so it costs at most one
    chunk, not the whole dataset.
    """
    first_chunk, _ = layout.chunk_and_file(committed_episodes)
    videos = root / layout.VIDEOS_DIR
    _require_inside(root, [root / layout.META_DIR, root / layout.SHMPIPE_DIR, videos])
    folders = [root / name for name in layout.EPISODE_FOLDERS]
    folders += sorted(p for p in videos.iterdir() if p.is_dir()) if videos.is_dir() else []
    _require_inside(root, [root / layout.SPILL_DIR, *folders])
    _require_inside(root, [chunk for folder in folders for chunk in folder.glob(layout.CHUNK_GLOB)])
    if opening:
        finish_pack(root)
    leftovers = [
        p
        for folder in (layout.META_DIR, layout.SHMPIPE_DIR)
        for p in (root / folder).glob("*")
        if is_temporary(p.name)
    ]
    if opening:
        leftovers += list((root / layout.SPILL_DIR).glob(layout.SPILL_GLOB))
    for folder in folders:
        for chunk in folder.glob(layout.CHUNK_GLOB):
            number = layout.chunk_number(chunk)
            if number is None or number < first_chunk or not chunk.is_dir():
                continue
            for path in chunk.iterdir():
                episode = layout.file_number(path)
                if only is not None and episode not in only:
                    continue
                if episode is not None and episode < committed_episodes and _rolled_forward(path):
                    continue
                if is_temporary(path.name) or (
                    episode is not None and episode >= committed_episodes
                ):
                    leftovers.append(path)
    for path in leftovers:
        path.unlink(missing_ok=True)


def remove_shmpipe_dir(root: Path) -> None:
    """Delete meta/shmpipe (the lock, a scan's histograms and state) that an open which failed
    made in a dataset another writer made: such a dataset is left as it was. Only a real folder
    is removed, never what a symlink there leads to."""
    folder = root / layout.SHMPIPE_DIR
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)


def _require_inside(root: Path, folders: list[Path]) -> None:
    """Refuse (ConfigError naming the folder) if a folder clean-up would list resolves outside
    the root, e.g. `data/` made a symlink to another folder: deleting the episode files "in" it
    would delete files there."""
    top = root.resolve()
    for folder in folders:
        real = folder.resolve()
        if real != top and top not in real.parents:
            raise ConfigError(
                f"{folder} leads outside the dataset (to {real}); a dataset's folders must be "
                "inside its root: replace the symlink with the folder itself"
            )


def _rolled_forward(path: Path) -> bool:
    """Rename the staged file of a committed episode into place if it is not there: a power
    cut can keep info.json's rename but not an earlier one, where the file system does not
    keep renames in order (the staged file was durable before info.json was renamed)."""
    if not path.name.endswith(layout.STAGED):
        return False
    final = path.with_name(path.name.removesuffix(layout.STAGED))
    if final.exists():
        return False
    path.rename(final)
    return True


def remove_new_dataset(root: Path, keep_root: bool) -> None:
    """Undo the creation of a dataset nothing was recorded into: its info.json and lock, and
    then every folder left empty (the root too unless it existed before)."""
    for name in (layout.INFO_PATH, layout.LOCK_PATH):
        (root / name).unlink(missing_ok=True)
    folders = sorted((p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()),
                     key=lambda p: len(p.parts), reverse=True)  # fmt: skip
    for folder in folders + ([] if keep_root else [root]):
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty: not ours to remove
