"""Rolling capture's segment arithmetic: the encoder deletes only segments that end before the
window's segment, so whatever the control process keeps is on disk, restart segments included."""

from __future__ import annotations

import pytest

from shmpipe.video.rolling_segments import RollingSegments, window_start
from shmpipe.video.segments import segment_path, segment_paths


def make_segments(video, firsts):
    for first in firsts:
        segment_path(video, first).write_bytes(b"")


@pytest.mark.parametrize(("frames", "start"), [(0, 0), (10, 0), (29, 10), (30, 20), (37, 20),
                                                (39, 20), (40, 30)])  # fmt: skip
def test_the_window_starts_at_the_segment_holding_the_frame_a_window_back(frames, start):
    assert window_start(frames, 10, 10) == start


def test_trim_keeps_the_segment_holding_the_window_start_and_later(tmp_path):
    video = tmp_path / "v.mp4"
    make_segments(video, [0, 10, 20, 23, 30])  # 23: a restarted encoder's segment
    RollingSegments(video, 10, 10).trim(35)  # window start 20: [20..23) and on are needed
    assert [first for first, _ in segment_paths(video)] == [20, 23, 30]
    RollingSegments(video, 10, 10).trim(44)  # window start 30
    assert [first for first, _ in segment_paths(video)] == [30]


def test_a_kept_window_deletes_what_comes_before_it_and_nothing_later(tmp_path):
    video = tmp_path / "v.mp4"
    make_segments(video, [0, 10, 20, 30])
    kept = RollingSegments(video, 10, 10, kept_from=10)
    assert [first for first, _ in segment_paths(video)] == [10, 20, 30]
    kept.trim(90)  # once kept, the window no longer moves
    assert [first for first, _ in segment_paths(video)] == [10, 20, 30]
    assert kept.first_kept == 10 and RollingSegments(video, 10, 10).first_kept == 0
    assert kept.cut_at(40, 30) and not kept.cut_at(30, 30) and not kept.cut_at(41, 30)
