"""End-to-end recording on both backends: what is written decodes to what was added."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe import Pipeline, VideoEncoderConfig
from tests.helpers.episodes import episode_files
from tests.helpers.frames import smooth_frame, textured_frame
from tests.helpers.media import decode_video, psnr
from tests.helpers.oracles import exact_image_stats

FPS = 30
# H.264 without lookahead holds almost no frames, so its ring may be tiny and easy to fill
LOW_DELAY = VideoEncoderConfig(vcodec="libx264", preset=None, extra_options={"tune": "zerolatency"})
TINY_RING = {"encoder": LOW_DELAY, "ring_budget_bytes": 1}  # the smallest ring it allows
H, W = 96, 128
CAMERAS = {"observation.images.front": (H, W, 3), "observation.images.wrist": (H, W, 3)}
FEATURES = {"observation.state": (6,), "action": (6,)}


def numeric(i: int) -> dict[str, np.ndarray]:
    t = np.arange(6, dtype=np.float32)
    return {"observation.state": np.sin(t + i / 10), "action": np.cos(t + i / 10)}


def record(pipe: Pipeline, n: int, frame_fn=smooth_frame, task="pick the cube"):
    added = {name: [] for name in pipe.cameras}
    for i in range(n):
        frame = numeric(i) if pipe.features else {}
        for c, name in enumerate(pipe.cameras):
            image = frame_fn(i, *pipe.cameras[name][:2], c)
            frame[name] = image
            added[name].append(image)
        pipe.add_frame(frame, task=task)
    return added


def test_videos_decode_to_the_added_frames_with_exact_count_and_timestamps(tmp_path, backend):
    n = 45
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=CAMERAS, features=FEATURES) as pipe:
        added = record(pipe, n)
        result = pipe.finish_episode()
    assert result.episode_index == 0 and result.num_frames == n
    for name in CAMERAS:
        path, start, end = result.videos[name]
        assert (start, end) == (0.0, n / FPS)
        frames, times = decode_video(path)
        assert len(frames) == n, f"{name}: decoded {len(frames)} frames, added {n}"
        np.testing.assert_allclose(times, np.arange(n) / FPS, atol=1e-4)
        worst = min(psnr(a, b) for a, b in zip(frames, added[name], strict=True))
        assert worst >= 35.0, f"{name}: worst frame PSNR {worst:.1f} dB < 35 dB"


def test_numeric_rows_are_written_with_lerobot_columns(tmp_path, backend):
    n = 20
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=CAMERAS, features=FEATURES) as pipe:
        record(pipe, 5)
        first = pipe.finish_episode()
        record(pipe, n, task="place the cube")
        result = pipe.finish_episode()
    assert first.episode_index == 0 and result.episode_index == 1
    table = pq.read_table(result.data)
    assert table.column_names == [
        "observation.state",
        "action",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    ]
    rows = table.to_pydict()
    assert rows["frame_index"] == list(range(n))
    assert rows["episode_index"] == [1] * n
    assert rows["index"] == list(range(5, 5 + n))
    assert rows["task_index"] == [1] * n
    np.testing.assert_allclose(rows["timestamp"], np.arange(n) / FPS, rtol=1e-6)
    state = np.array(rows["observation.state"], np.float32)
    np.testing.assert_array_equal(
        state, np.stack([numeric(i)["observation.state"] for i in range(n)])
    )
    assert b"huggingface" in table.schema.metadata


def test_image_stats_equal_an_exact_numpy_computation(tmp_path, backend):
    cams = {"cam.big": (480, 640, 3), "cam.small": (60, 80, 3)}
    n = 8
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=cams) as pipe:
        added = record(pipe, n, frame_fn=lambda i, h, w, c: textured_frame(i, h, w, c))
        result = pipe.finish_episode()
    for name in cams:
        expected = exact_image_stats(added[name])
        got = result.stats[name]
        assert set(got) == set(expected)
        for key in expected:
            assert got[key].shape == expected[key].shape, f"{name}/{key} shape"
            np.testing.assert_allclose(
                got[key], expected[key], rtol=1e-12, atol=1e-12, err_msg=f"{name}/{key}"
            )


def test_numeric_feature_stats_are_exact(tmp_path, backend):
    n = 30
    with Pipeline(tmp_path / "rec", fps=FPS, cameras={"cam": (H, W, 3)}, features=FEATURES) as pipe:
        for i in range(n):
            pipe.add_frame({"cam": smooth_frame(i, H, W), **numeric(i)}, task="t")
        result = pipe.finish_episode()
    values = np.stack([numeric(i)["action"] for i in range(n)]).astype(np.float64)
    stats = result.stats["action"]
    np.testing.assert_allclose(stats["mean"], values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], values.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["q90"], np.quantile(values, 0.9, axis=0), rtol=1e-12)
    assert stats["count"].tolist() == [n]
    assert result.stats["frame_index"]["max"].tolist() == [n - 1]


def test_cancel_removes_partial_files_and_frees_the_episode_index(tmp_path, backend):
    root = tmp_path / "rec"
    with Pipeline(root, fps=FPS, cameras=CAMERAS, features=FEATURES) as pipe:
        record(pipe, 40)
        pipe.cancel_episode()
        assert episode_files(root) == [], "cancel left files behind"
        record(pipe, 12)
        result = pipe.finish_episode()
    assert result.episode_index == 0
    assert result.num_frames == 12
    for name in CAMERAS:
        frames, _ = decode_video(result.videos[name][0])
        assert len(frames) == 12
    assert episode_files(root) == [
        "data/chunk-000/file-000.parquet",
        "videos/observation.images.front/chunk-000/file-000.mp4",
        "videos/observation.images.wrist/chunk-000/file-000.mp4",
    ]


def test_cancelled_frames_do_not_reach_the_next_episode_stats(tmp_path, backend):
    cams = {"cam": (H, W, 3)}
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=cams) as pipe:
        for _i in range(10):
            pipe.add_frame({"cam": np.zeros((H, W, 3), np.uint8)}, task="t")
        pipe.cancel_episode()
        kept = [textured_frame(i, H, W) for i in range(6)]
        for image in kept:
            pipe.add_frame({"cam": image}, task="t")
        result = pipe.finish_episode()
    np.testing.assert_allclose(result.stats["cam"]["mean"], exact_image_stats(kept)["mean"])
    assert result.stats["cam"]["count"].tolist() == [6 * H * W]


def test_both_backends_write_the_same_frames_and_stats(tmp_path, monkeypatch):
    results = {}
    for backend in ("process", "thread"):
        monkeypatch.setenv("SHMPIPE_BACKEND", backend)
        with Pipeline(tmp_path / backend, fps=FPS, cameras=CAMERAS, features=FEATURES) as pipe:
            record(pipe, 25, frame_fn=lambda i, h, w, c: textured_frame(i, h, w, c))
            results[backend] = pipe.finish_episode()
    a, b = results["process"], results["thread"]
    assert a.num_frames == b.num_frames == 25
    for name in a.stats:
        for key in a.stats[name]:
            np.testing.assert_array_equal(a.stats[name][key], b.stats[name][key])
    for name in CAMERAS:
        fa, ta = decode_video(a.videos[name][0])
        fb, tb = decode_video(b.videos[name][0])
        assert len(fa) == len(fb) == 25 and ta == tb
        # the same encoder on the same frames: the decoded pictures are identical
        for i, (x, y) in enumerate(zip(fa, fb, strict=True)):
            assert np.array_equal(x, y), f"{name} frame {i} differs between backends"
    for name in FEATURES:
        np.testing.assert_array_equal(
            pq.read_table(a.data).column(name).to_pylist(),
            pq.read_table(b.data).column(name).to_pylist(),
        )


def test_chw_and_float_frames_are_converted_like_hwc_uint8(tmp_path, backend):
    cams = {"hwc": (H, W, 3), "chw": (H, W, 3), "float": (H, W, 3)}
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=cams) as pipe:
        for i in range(10):
            img = textured_frame(i, H, W)
            pipe.add_frame(
                {"hwc": img, "chw": img.transpose(2, 0, 1).copy(), "float": img / 255.0}, task="t"
            )
        result = pipe.finish_episode()
    for key in result.stats["hwc"]:
        np.testing.assert_array_equal(result.stats["chw"][key], result.stats["hwc"][key])
        np.testing.assert_array_equal(result.stats["float"][key], result.stats["hwc"][key])


def test_full_ring_spills_to_backlog_and_nothing_is_dropped(tmp_path, backend):
    n = 60
    cams = {"cam": (240, 320, 3)}
    added = {"cam": [smooth_frame(i, 240, 320) for i in range(n)]}
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=cams, **TINY_RING) as pipe:
        most_backlogged = 0
        for image in added["cam"]:  # unpaced: far faster than the encoder
            pipe.add_frame({"cam": image}, task="t")
            most_backlogged = max(most_backlogged, pipe.status().cameras["cam"].backlog)
        result = pipe.finish_episode()
        after = pipe.status()
    assert result.overflow_count["cam"] > 0, "the ring never filled; the test proves nothing"
    assert most_backlogged > 0
    assert after.cameras["cam"].backlog == 0
    assert result.ring_high_water["cam"] == pipe.ring_slots
    frames, _ = decode_video(result.videos["cam"][0])
    assert len(frames) == n
    assert min(psnr(a, b) for a, b in zip(frames, added["cam"], strict=True)) >= 35


def test_overflow_error_policy_refuses_the_frame_and_keeps_the_episode(tmp_path, backend):
    cams = {"cam": (240, 320, 3)}
    accepted = 0
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=cams, overflow="error", **TINY_RING) as pipe:
        with pytest.raises(RuntimeError, match="ring full"):
            for i in range(200):
                pipe.add_frame({"cam": smooth_frame(i, 240, 320)}, task="t")
                accepted += 1
        result = pipe.finish_episode()
    assert result.num_frames == accepted
    assert len(decode_video(result.videos["cam"][0])[0]) == accepted


def test_overflow_block_policy_waits_and_drops_nothing(tmp_path, backend):
    cams = {"cam": (240, 320, 3)}
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=cams, overflow="block", **TINY_RING) as pipe:
        record(pipe, 30)
        result = pipe.finish_episode()
    assert result.overflow_count["cam"] == 0
    assert len(decode_video(result.videos["cam"][0])[0]) == 30


def test_status_reports_workers_and_counters(tmp_path, backend):
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=CAMERAS, features=FEATURES) as pipe:
        record(pipe, 10)
        status = pipe.status()
        assert status.episode_index == 0 and status.episode_frames == 10
        for cam in status.cameras.values():
            assert cam.alive and cam.worker_pid > 0
            assert cam.frames_written == 10
            assert cam.slots_total == pipe.ring_slots
        assert status.stats.alive
        pipe.finish_episode()
        status = pipe.status()
        assert status.episode_index is None
        for cam in status.cameras.values():
            assert cam.frames_encoded == 10
        assert status.stats.frames_seen == 20
    if backend == "process":
        assert len({c.worker_pid for c in status.cameras.values()} | {status.stats.worker_pid}) == 3


def test_many_short_episodes_keep_consecutive_indices(tmp_path, backend):
    with Pipeline(tmp_path / "rec", fps=FPS, cameras=CAMERAS, features=FEATURES) as pipe:
        indices = []
        for ep in range(6):
            record(pipe, 3 + ep)
            if ep == 2:
                pipe.cancel_episode()
                continue
            result = pipe.finish_episode()
            indices.append(result.episode_index)
            assert len(decode_video(result.videos["observation.images.front"][0])[0]) == 3 + ep
    assert indices == [0, 1, 2, 3, 4]
