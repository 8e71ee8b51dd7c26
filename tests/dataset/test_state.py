"""meta/shmpipe/state.npz: opening a dataset reads it instead of every episode; missing or stale,
it is rebuilt from the dataset's files (logged), and the stats come out the same either way."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from shmpipe.dataset import layout
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.dataset.writer import DatasetWriter
from shmpipe.stats.images import channel_histograms
from shmpipe.stats.sketch import K
from shmpipe.video.encoder_config import VideoEncoderConfig

SETTINGS = {"fps": 30, "cameras": {"cam": (8, 8, 3)}, "features": {"state": (3,)},
            "video": VideoEncoderConfig().as_dict()}  # fmt: skip
LENGTH = 250  # 10 episodes hold past sketch.K values per column: quantiles are a summary's


def commit(writer: DatasetWriter, seed: int) -> None:
    """One episode: seeded rows, a fake video file, the histogram of one frame per row."""
    rng = np.random.default_rng(seed)
    rows = EpisodeRows(SETTINGS["features"], LENGTH)
    for _ in range(LENGTH):
        rows.append({"state": rng.standard_cauchy(3)}, writer.task_index(f"t{seed % 2}"))
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    episode = writer.next_episode_index
    video = layout.video_path(writer.root, "cam", episode)
    video.parent.mkdir(parents=True, exist_ok=True)
    video.write_bytes(b"not decoded here")
    writer.commit_episode(episode, rows, {"cam": channel_histograms(image) * LENGTH})


def dataset(root: Path, episodes: int) -> Path:
    with DatasetWriter.open(root, **SETTINGS) as writer:
        for seed in range(episodes):
            commit(writer, seed)
    assert episodes * LENGTH > K
    return root


def after_one_more(root: Path) -> bytes:
    """stats.json once the dataset is reopened and one more episode committed."""
    with DatasetWriter.open(root, **SETTINGS) as writer:
        commit(writer, 99)
    return (root / layout.STATS_PATH).read_bytes()


def test_a_valid_state_is_all_opening_reads(tmp_path):
    root = dataset(tmp_path / "ds", 10)
    reference = after_one_more(shutil.copytree(root, tmp_path / "copy"))
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for folder in ("data", layout.HISTOGRAMS_DIR):  # the rows and histograms of episodes 0..9
        shutil.move(root / folder, hidden / Path(folder).name)
    assert after_one_more(root) == reference


def test_missing_or_stale_state_is_rebuilt_logged_and_gives_the_same_stats(tmp_path, caplog):
    root = dataset(tmp_path / "ds", 10)
    reference = after_one_more(shutil.copytree(root, tmp_path / "copy"))
    (root / layout.STATE_PATH).unlink()
    missing = shutil.copytree(root, tmp_path / "missing")
    info = json.loads((root / layout.INFO_PATH).read_text())
    dataset(tmp_path / "other", 10)  # a state.npz of another commit: stale here
    shutil.copy(tmp_path / "other" / layout.STATE_PATH, root / layout.STATE_PATH)
    (root / layout.INFO_PATH).write_text(json.dumps(info, indent=2))  # same totals, other text
    with caplog.at_level(logging.WARNING, logger="shmpipe"):
        assert after_one_more(missing) == reference
        assert after_one_more(root) == reference
    lines = [r.getMessage() for r in caplog.records]
    assert any("state.npz is missing; rebuilding" in line for line in lines), lines
    assert any("belongs to another info.json" in line and "rebuilding" in line
               for line in lines), lines


def test_a_rebuilt_state_is_saved_so_the_next_open_reads_only_it(tmp_path, caplog):
    root = dataset(tmp_path / "ds", 9)
    saved = (root / layout.STATE_PATH).read_bytes()
    (root / layout.STATE_PATH).write_bytes(b"torn")
    with caplog.at_level(logging.WARNING, logger="shmpipe"):
        DatasetWriter.open(root, **SETTINGS).close()
    assert "unreadable" in caplog.text
    assert (root / layout.STATE_PATH).read_bytes() == saved
