"""Joining a restarted encoder's segments (shmpipe.video.episode_writer.join_segments) through
the one packet-copy loop (shmpipe.video.packets): every frame once, in order, at i / fps."""

from __future__ import annotations

from fractions import Fraction

import av
import msgspec
import numpy as np
import pytest

from shmpipe.video.episode_writer import EpisodeVideoWriter, join_segments, segment_paths
from shmpipe.video.packets import frame_packets
from tests.helpers.frames import value_of
from tests.helpers.media import decode_video
from tests.helpers.small_video import FPS, SMALL_AV1, assert_flat_frames, flat

STALE = 250  # what a killed writer's repeated frames show, so the join's choice is visible


def write_segment(path, first: int, stop: int, stale_from: int | None = None) -> None:
    """Frames first..stop-1 in a segment of `path`, flushed (what a writer leaves once its
    frames are durable); frames from `stale_from` on show STALE instead of their own value."""
    writer = EpisodeVideoWriter(path, SMALL_AV1, first_frame=first)
    for i in range(first, stop):
        stale = stale_from is not None and i >= stale_from
        writer.encode(flat(STALE if stale else value_of(i)), i)
    writer.close_durably()


def test_a_killed_writers_repeated_frames_are_taken_from_its_successor_once(tmp_path):
    path = tmp_path / "front.mp4"
    write_segment(path, 0, 12, stale_from=9)  # frames 9..11 are repeated by the successor
    writer = EpisodeVideoWriter(path, SMALL_AV1, first_frame=9)
    for i in range(9, 20):
        writer.encode(flat(value_of(i)), i)
    writer.finish()
    assert_flat_frames(path, 20)
    assert segment_paths(path) == [], "segments left after the join"


def test_three_segments_join_into_one_episode(tmp_path):
    path = tmp_path / "front.mp4"
    write_segment(path, 0, 6, stale_from=4)
    write_segment(path, 4, 11, stale_from=10)
    write_segment(path, 10, 15)
    join_segments(segment_paths(path), 15, Fraction(1, FPS), path)
    assert_flat_frames(path, 15)


def test_a_gap_between_segments_raises_naming_the_lost_frames(tmp_path):
    path = tmp_path / "front.mp4"
    write_segment(path, 0, 10)
    write_segment(path, 12, 20)
    with pytest.raises(RuntimeError, match=r"frames 10\.\.11 were lost in a crash"):
        join_segments(segment_paths(path), 20, Fraction(1, FPS), path)
    assert not path.exists()


@pytest.mark.parametrize(
    ("spans", "frames", "error"),
    [
        pytest.param([(0, 4), (6, 8)], 8, "4..5 were lost", id="gap"),
        pytest.param([(0, 6), (6, 10)], 12, "joined 10 frames, expected 12", id="missing-end"),
    ],
)
def test_a_failed_join_raises_and_leaves_no_file(tmp_path, spans, frames, error):
    path = tmp_path / "front.mp4"
    for first, stop in spans:
        write_segment(path, first, stop)
    with pytest.raises(RuntimeError, match=error):
        join_segments(segment_paths(path), frames, Fraction(1, FPS), path)
    assert [p.name for p in tmp_path.iterdir() if ".partial." not in p.name] == []


def test_frame_packets_skips_the_flush_packet(tmp_path):
    path = tmp_path / "front.mp4"
    write_segment(path, 0, 7)
    with av.open(str(next(iter(segment_paths(path)))[1])) as container:
        stream = container.streams.video[0]
        every = [(p.size, p.pts) for p in container.demux(stream)]
        container.seek(0)
        frames = [(p.size, p.pts) for p in frame_packets(container, stream)]
    assert len(frames) == 7
    assert all(size and pts is not None for size, pts in frames)
    assert [p for p in every if not p[0] or p[1] is None], "the demuxer's flush packet is gone?"
    assert frames == [p for p in every if p[0] and p[1] is not None]


@pytest.mark.parametrize("fps", [10, FPS])
def test_a_join_from_a_kept_frame_holds_every_frame_from_it_at_time_zero(tmp_path, fps):
    """Rolling capture's join: segments before `kept_from` are left out, frames from it start
    at 0, and the last frame is decodable (PyAV 15's fragments give packets no duration: at 10
    fps the muxer then ended the track at the last frame's start and decoders dropped it)."""
    video = msgspec.structs.replace(SMALL_AV1, fps=fps)
    path = tmp_path / "front.mp4"
    for first, stop in ((0, 10), (10, 20), (20, 25)):
        writer = EpisodeVideoWriter(path, video, first_frame=first)
        for i in range(first, stop):
            writer.encode(flat(value_of(i)), i)
        writer.close_durably()
    join_segments(segment_paths(path), 25, Fraction(1, fps), path, kept_from=10)
    decoded, times = decode_video(path)
    assert [round(float(f.mean())) for f in decoded] == pytest.approx(
        [value_of(i) for i in range(10, 25)], abs=6)  # fmt: skip
    np.testing.assert_allclose(times, np.arange(15) / fps, atol=1e-4)
