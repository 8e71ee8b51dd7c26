"""Episodes longer than 2,048 s: their float32 timestamps (the format's) step by 2.4e-4 s, more
than LeRobot's 1e-4 s tolerance, so verify judges a row's timestamp at the precision the format
stores, and recording says so at the row where it happens. (LeRobot 0.4.4's and 0.6.1's loaders
compare in float32 and load these rows.)"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from shmpipe.dataset.rows import EpisodeRows, stamp_limit
from shmpipe.tools.verify.rows import episode_problems

FPS, ROWS = 30, 70_000  # 38.9 min


def rows_table(timestamps: np.ndarray) -> pa.Table:
    n = len(timestamps)
    return pa.table({"timestamp": pa.array(timestamps, pa.float32()),
                     "frame_index": np.arange(n), "episode_index": np.zeros(n, np.int64),
                     "index": np.arange(n)})  # fmt: skip


def test_verify_accepts_the_float32_timestamps_of_an_episode_past_2048_s():
    exact = np.arange(ROWS) / FPS
    assert episode_problems(rows_table(exact.astype(np.float32)), 0, ROWS, 0, FPS) == []


def test_verify_still_finds_a_timestamp_a_frame_off_past_2048_s():
    wrong = (np.arange(ROWS) / FPS).astype(np.float32)
    wrong[65_000] += 1 / FPS
    problems = episode_problems(rows_table(wrong), 0, ROWS, 0, FPS)
    assert len(problems) == 1 and "at row 65000" in problems[0], problems


def test_recording_says_once_at_the_row_past_the_tolerance(caplog):
    assert stamp_limit(FPS) == 61_441  # 2048.0333 s: float32 2048.03345, 1.1e-4 s off
    rows = EpisodeRows({"s": (1,)}, fps=FPS)
    row = {"s": np.zeros(1, np.float32)}
    with caplog.at_level(logging.WARNING, logger="shmpipe"):
        for i in range(ROWS):
            rows.ensure_room()
            if i == 61_440:
                assert not caplog.records, "said before the row"
            rows.append(row, 0)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "61441 frames at 30 fps" in said[0] and "float32" in said[0], said
    assert rows.num_frames == ROWS
