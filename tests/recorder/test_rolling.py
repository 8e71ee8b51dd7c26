"""Rolling capture (Pipeline(preroll_s=...)): keep() turns the encoded window and what follows
into the episode; what came before the window is nowhere, and stats count exactly the kept
frames."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe import Pipeline
from shmpipe.errors import ConfigError, UsageError
from shmpipe.tools.verify.verifier import verify_dataset
from shmpipe.video.episode_writer import EpisodeVideoWriter
from tests.helpers import encoder_faults
from tests.helpers.episodes import episode_files
from tests.helpers.frames import marked_frames, value_of
from tests.helpers.media import decode_video, psnr
from tests.helpers.oracles import exact_image_stats

FPS = 10  # segments of 10 frames (1 s), a window of 1 s: 10 frames
H, W = 64, 96
CAMERAS = {"cam.a": (H, W, 3), "cam.b": (H, W, 3)}
FEATURES = {"action": (3,)}


def frame(k: int, images: dict) -> dict:
    out = {name: images[name][k] for name in CAMERAS}
    out["action"] = np.array([k, -k, k / 2], np.float32)
    return out


def frames_for(n: int) -> dict[str, list[np.ndarray]]:
    return {name: marked_frames(n, H, W, phase=c) for c, name in enumerate(CAMERAS)}


def segment_files(root) -> list:
    return [p for p in (root / "videos").rglob("*") if ".partial." in p.name]


def test_keep_commits_the_window_rounded_to_a_segment_plus_live_frames(tmp_path, backend):
    root = tmp_path / "rec"
    rolled, live = 37, 8  # keep at frame 37: the window's frame 27 is in the segment from 20
    images = frames_for(rolled + live)
    with Pipeline(root, fps=FPS, cameras=CAMERAS, features=FEATURES, preroll_s=1.0) as pipe:
        assert not pipe.rolling  # no frame yet
        for k in range(rolled):
            pipe.add_frame(frame(k, images), task="roll")
        assert pipe.rolling
        assert pipe.keep() == rolled - 20  # the pre-roll: frames 20..36
        assert not pipe.rolling
        for k in range(rolled, rolled + live):
            pipe.add_frame(frame(k, images), task="roll")
        result = pipe.finish_episode()
    first = 20
    kept = range(first, rolled + live)
    assert result.num_frames == len(kept)
    for name in CAMERAS:
        path, start, end = result.videos[name]
        assert (start, end) == (0.0, len(kept) / FPS)
        decoded, times = decode_video(path)
        assert len(decoded) == len(kept), f"{name}: {len(decoded)} frames, kept {len(kept)}"
        np.testing.assert_allclose(times, np.arange(len(kept)) / FPS, atol=1e-4)
        worst = min(psnr(d, images[name][k]) for d, k in zip(decoded, kept, strict=True))
        assert worst >= 35.0, f"{name}: worst PSNR {worst:.1f} dB"
        corners = [int(np.median(d[8:24, 8:24])) for d in decoded]
        assert all(abs(c - value_of(k)) <= 3 for c, k in zip(corners, kept, strict=True))
        expected = exact_image_stats([images[name][k] for k in kept])
        for key, value in expected.items():
            np.testing.assert_allclose(result.stats[name][key], value, rtol=1e-12, atol=1e-12,
                                       err_msg=f"{name}/{key}")  # fmt: skip
    rows = pq.read_table(result.data).to_pydict()
    assert rows["frame_index"] == list(range(len(kept)))
    assert [a[0] for a in rows["action"]] == [float(k) for k in kept]
    np.testing.assert_allclose(rows["timestamp"], np.arange(len(kept)) / FPS, rtol=1e-6)
    actions = np.array([[k, -k, k / 2] for k in kept], np.float64)
    np.testing.assert_allclose(result.stats["action"]["mean"], actions.mean(axis=0), rtol=1e-6)
    assert result.stats["action"]["count"].tolist() == [len(kept)]
    assert segment_files(root) == []


def test_cancel_after_keep_rolls_again_and_the_next_keep_holds_only_its_window(tmp_path):
    root = tmp_path / "rec"
    images = frames_for(60)
    with Pipeline(root, fps=FPS, cameras=CAMERAS, features=FEATURES, preroll_s=1.0) as pipe:
        for k in range(25):
            pipe.add_frame(frame(k, images), task="roll")
        pipe.keep()
        pipe.keep()  # kept already: nothing changes
        pipe.cancel_episode()
        for k in range(25, 48):  # a new take: its frames 0..22; keep at 23 -> from 10
            pipe.add_frame(frame(k, images), task="roll")
        pipe.keep()
        result = pipe.finish_episode()
    assert result.episode_index == 0
    kept = range(35, 48)
    decoded, _ = decode_video(result.videos["cam.a"][0])
    assert len(decoded) == len(kept)
    corners = [int(np.median(d[8:24, 8:24])) for d in decoded]
    assert all(abs(c - value_of(k)) <= 3 for c, k in zip(corners, kept, strict=True))
    assert result.stats["cam.a"]["count"].tolist() == [len(kept) * H * W]


def test_a_long_roll_holds_a_bounded_number_of_segments_and_rows(tmp_path):
    root = tmp_path / "rec"
    images = frames_for(1)
    still = {name: [images[name][0]] * 1 for name in CAMERAS}
    with Pipeline(root, fps=FPS, cameras=CAMERAS, features=FEATURES, preroll_s=1.0) as pipe:
        most = 0
        for k in range(70):  # 7 segments: 4 fall out of the window (the soak test rolls 10 min)
            pipe.add_frame({**frame(0, still), "action": np.zeros(3, np.float32)}, task="t")
            if k % 10 == 5:
                most = max(most, len(segment_files(root)))
                assert pipe.episode_frames <= 20  # rows: at most the window plus a segment
        deadline = time.monotonic() + 10
        while pipe.status().cameras["cam.a"].frames_encoded < 70 and time.monotonic() < deadline:
            time.sleep(0.05)
        most = max(most, len(segment_files(root)))
        # per camera: the window (1 segment), the one it starts in, the open one
        assert most <= 2 * 3, f"{most} segment files for a 1 s window of 2 cameras"
    assert episode_files(root) == [] and segment_files(root) == []


def test_finish_before_keep_and_keep_without_preroll_are_refused(tmp_path):
    images = frames_for(3)
    with Pipeline(tmp_path / "a", fps=FPS, cameras=CAMERAS, features=FEATURES,
                  preroll_s=1.0) as pipe:  # fmt: skip
        for k in range(3):
            pipe.add_frame(frame(k, images), task="t")
        with pytest.raises(UsageError, match="keep"):
            pipe.finish_episode()
        pipe.keep()  # the rolled frames are the pre-roll (less than a window)
        result = pipe.finish_episode()
        assert result.num_frames == 3
    with Pipeline(tmp_path / "b", fps=FPS, cameras=CAMERAS, features=FEATURES) as pipe:
        with pytest.raises(UsageError, match="preroll_s"):
            pipe.keep()
    with pytest.raises(ConfigError, match="preroll_s"):
        Pipeline(tmp_path / "c", fps=FPS, cameras=CAMERAS, preroll_s=-1)


def test_keep_before_any_frame_starts_the_episode_with_the_next_frame(tmp_path):
    images = frames_for(4)
    with Pipeline(tmp_path / "a", fps=FPS, cameras=CAMERAS, features=FEATURES,
                  preroll_s=2.0) as pipe:  # fmt: skip
        pipe.keep()
        for k in range(4):
            pipe.add_frame(frame(k, images), task="t")
        result = pipe.finish_episode()
    assert result.num_frames == 4


def test_killed_workers_mid_roll_lose_nothing_of_the_kept_episode(tmp_path):
    root = tmp_path / "rec"
    rolled, live = 37, 8
    images = frames_for(rolled + live)
    with Pipeline(root, fps=FPS, cameras=CAMERAS, features=FEATURES, preroll_s=1.0,
                  backend="process") as pipe:  # fmt: skip
        for k in range(rolled + live):
            if k == 24:  # inside the segment the kept window starts in (frames 20..29)
                status = pipe.status()
                for pid in (status.cameras["cam.a"].worker_pid, status.stats.worker_pid):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
            if k == rolled:
                pipe.keep()
            pipe.add_frame(frame(k, images), task="roll")
        result = pipe.finish_episode()
        assert result.worker_restarts >= 2
    kept = range(20, rolled + live)
    for name in CAMERAS:
        decoded, _ = decode_video(result.videos[name][0])
        corners = [int(np.median(d[8:24, 8:24])) for d in decoded]
        assert len(decoded) == len(kept), f"{name}: {len(decoded)} frames, kept {len(kept)}"
        assert all(abs(c - value_of(k)) <= 3 for c, k in zip(corners, kept, strict=True))
        expected = exact_image_stats([images[name][k] for k in kept])
        np.testing.assert_allclose(result.stats[name]["mean"], expected["mean"], rtol=1e-12)
        assert result.stats[name]["count"].tolist() == expected["count"].tolist()
    assert segment_files(root) == []


def test_stats_exact_when_the_stats_worker_reaches_the_kept_frame_after_keep(tmp_path):
    rolled, live = 37, 8
    images = frames_for(rolled + live)
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=CAMERAS, features=FEATURES, preroll_s=1.0,
                  backend="process", stall_timeout_s=30) as pipe:  # fmt: skip
        pid = pipe.status().stats.worker_pid
        for k in range(rolled + live):
            if k == 15:
                os.kill(pid, signal.SIGSTOP)  # it has not counted frame 20 when keep() comes
            if k == rolled:
                pipe.keep()
            if k == rolled + 3:
                os.kill(pid, signal.SIGCONT)
            pipe.add_frame(frame(k, images), task="roll")
        result = pipe.finish_episode()
        assert pipe.status().stats.worker_pid == pid, "the stats worker was not replaced"
    kept = [images["cam.b"][k] for k in range(20, rolled + live)]
    expected = exact_image_stats(kept)
    for key, value in expected.items():
        np.testing.assert_allclose(result.stats["cam.b"][key], value, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fault", ["refuse:23", "misorder:25"])
def test_a_failed_encode_in_the_kept_segment_is_encoded_again(tmp_path, monkeypatch, fault,
                                                             caplog):  # fmt: skip
    """The encoder encodes again from its last durable frame (an odd frame) into a new segment:
    the window's trimming and the join still keep every frame from the segment start."""
    monkeypatch.setattr(EpisodeVideoWriter, "_mux", EpisodeVideoWriter._mux)  # restored after
    monkeypatch.setattr(EpisodeVideoWriter, "encode", EpisodeVideoWriter.encode)
    encoder_faults.install(fault)
    rolled, live = 37, 8
    images = frames_for(rolled + live)
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=CAMERAS, features=FEATURES, preroll_s=1.0,
                  backend="thread") as pipe:  # fmt: skip
        for k in range(rolled + live):
            if k == rolled:
                pipe.keep()
            pipe.add_frame(frame(k, images), task="roll")
        result = pipe.finish_episode()
    assert "encoding again from frame" in caplog.text, "the fault never fired"
    kept = range(20, rolled + live)
    for name in CAMERAS:
        decoded, times = decode_video(result.videos[name][0])
        corners = [int(np.median(d[8:24, 8:24])) for d in decoded]
        assert len(decoded) == len(kept), f"{name}: {len(decoded)} frames, kept {len(kept)}"
        assert all(abs(c - value_of(k)) <= 3 for c, k in zip(corners, kept, strict=True))
        np.testing.assert_allclose(times, np.arange(len(kept)) / FPS, atol=1e-4)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.soak
def test_a_long_roll_holds_only_its_window_in_memory_and_on_disk(tmp_path):
    """10 minutes of frames at 30 fps rolled through a 2 s window: the control process's and
    the encoders' memory stop growing after the first minute, the segments on disk stay ~3 per
    camera and the rows at the window, and a keep at the end holds the last window only. The
    loop waits for the encoders (overflow "block"): a backlog is memory by design."""
    root, n = tmp_path / "rec", 30 * 600
    images = frames_for(60)
    with Pipeline(root, fps=30, cameras=CAMERAS, features=FEATURES, preroll_s=2.0,
                  backend="process", overflow="block") as pipe:  # fmt: skip (no backlog)
        pids = [os.getpid()] + [c.worker_pid for c in pipe.status().cameras.values()]
        most, early = 0, None
        for k in range(n):
            pipe.add_frame({**frame(k % 60, images), "action": np.zeros(3, np.float32)}, "t")
            if k == 30 * 60:
                early = [rss_mb(pid) for pid in pids]
            if k % 97 == 0:
                most = max(most, len(segment_files(root)))
                assert pipe.episode_frames <= 90
        late = [rss_mb(pid) for pid in pids]
        pipe.keep()
        result = pipe.finish_episode()
    assert most <= 2 * 4, f"{most} segment files for a 2 s window of 2 cameras"
    grew = [b - a for a, b in zip(early, late, strict=True)]
    assert max(grew) < 20, f"memory grew by {grew} MB (control, encoders) over 9 minutes"
    assert 60 <= result.num_frames < 90 and segment_files(root) == []


@pytest.mark.parametrize("wait", [True, False], ids=["finish", "background-finish"])
def test_two_kept_episodes_make_a_dataset_that_verifies(tmp_path, wait):
    """keep() at frame 30 keeps 20..44; a finish at 45 (wait=False: committed in the background)
    and the next frames roll at once into a new window, kept at its frame 40: 75..99. Each
    episode holds only its own frames and exact stats, and the dataset verifies."""
    root = tmp_path / "rec"
    images = frames_for(100)
    with Pipeline(root, fps=FPS, cameras=CAMERAS, features=FEATURES, preroll_s=1.0) as pipe:
        for k in range(100):
            if k in (30, 85):
                pipe.keep()
            if k == 45:
                first = pipe.finish_episode(wait=wait)
            pipe.add_frame(frame(k, images), task="roll")
            if k == 46:
                assert pipe.rolling, "the frame after a finish rolls"
        second = pipe.finish_episode()
        if not wait:
            first = first.result()
    for index, (result, kept) in enumerate(((first, range(20, 45)), (second, range(75, 100)))):
        assert (result.episode_index, result.num_frames) == (index, len(kept))
        for camera in CAMERAS:
            decoded, _ = decode_video(result.videos[camera].path)
            corners = [int(np.median(d[8:24, 8:24])) for d in decoded]
            assert all(abs(c - value_of(k)) <= 3 for c, k in zip(corners, kept, strict=True))
        expected = exact_image_stats([images["cam.a"][k] for k in kept])
        np.testing.assert_allclose(result.stats["cam.a"]["mean"], expected["mean"], rtol=1e-12)
        assert result.stats["cam.a"]["count"].tolist() == expected["count"].tolist()
    report = verify_dataset(root, decode=True)
    assert report.problems == []
    assert (report.episodes, report.frames, report.video_frames) == (2, 50, 100)


def test_capture_times_of_the_kept_frames_only(tmp_path):
    images = frames_for(45)
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=CAMERAS, features=FEATURES, preroll_s=1.0,
                  capture_times=True) as pipe:  # fmt: skip
        for k in range(45):
            if k == 37:
                pipe.keep()
            times = {name: 1000.0 + k + c / 10 for c, name in enumerate(CAMERAS)}
            pipe.add_frame(frame(k, images), task="roll", capture_times=times)
        result = pipe.finish_episode()
    rows = pq.read_table(result.data).to_pydict()
    assert rows["capture_time.cam.b"] == [1000.0 + k + 0.1 for k in range(20, 45)]


def test_a_bool_and_an_int64_feature_roll_and_keep_exactly(tmp_path):
    features = {"intervention": ((1,), "bool"), "counts": ((2,), "int64")}
    images = frames_for(45)
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=CAMERAS, features=features,
                  preroll_s=1.0) as pipe:  # fmt: skip
        for k in range(45):
            if k == 37:
                pipe.keep()
            values = {"intervention": np.array([k % 3 == 0]),
                      "counts": np.array([k, 2**40 + k], np.int64)}  # fmt: skip
            pipe.add_frame({**{n: images[n][k] for n in CAMERAS}, **values}, task="roll")
        result = pipe.finish_episode()
    rows = pq.read_table(result.data).to_pydict()
    assert rows["intervention"] == [k % 3 == 0 for k in range(20, 45)]
    assert rows["counts"] == [[k, 2**40 + k] for k in range(20, 45)]
    assert result.stats["counts"]["min"].tolist() == [20, 2**40 + 20]


def test_stats_exact_when_the_stats_worker_is_far_behind_at_finish(tmp_path):
    """The stats worker stopped from before the first kept frame until after finish_episode()
    began: it then counts far more segments than its snapshot ring holds before it answers;
    the finish waits for it to pass the first kept frame (feeding it the backlog) first."""
    rolled, live = 37, 200
    images = frames_for(rolled + live)
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=CAMERAS, features=FEATURES, preroll_s=1.0,
                  backend="process", stall_timeout_s=30, ring_slots=43) as pipe:  # fmt: skip
        pid = pipe.status().stats.worker_pid
        for k in range(rolled + live):
            if k == 15:
                os.kill(pid, signal.SIGSTOP)  # it has not counted frame 20
            if k == rolled:
                pipe.keep()
            pipe.add_frame(frame(k, images), task="roll")
        threading.Timer(0.5, os.kill, (pid, signal.SIGCONT)).start()
        result = pipe.finish_episode()
    kept = [images["cam.a"][k] for k in range(20, rolled + live)]
    expected = exact_image_stats(kept)
    for key, value in expected.items():
        np.testing.assert_allclose(result.stats["cam.a"][key], value, rtol=1e-12, atol=1e-12)
