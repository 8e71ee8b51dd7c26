"""Settings that used to fail only at finish_episode, after a whole episode, are refused by the
constructor or start() before anything is written, and a valid pipeline still works after.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from shmpipe import ConfigError, Pipeline
from tests.helpers.episodes import assert_flat_episode, episode_files
from tests.helpers.frames import flat_frame, value_of

FPS = 30
SMALL = (48, 64, 3)


def refused(root: Path, **kwargs) -> Exception:
    """The exception Pipeline(root, ...) or its start() raised; fails if both went through."""
    kwargs.setdefault("fps", FPS)
    kwargs.setdefault("backend", "thread")
    try:
        pipe = Pipeline(root, **kwargs)
    except Exception as exc:
        return exc
    try:
        pipe.start()
    except Exception as exc:
        return exc
    pipe.close()
    pytest.fail(f"Pipeline({kwargs}) was accepted and started")


def record_one_episode(root: Path, n: int = 3) -> None:
    """A valid pipeline on `root` still works (a refusal left nothing that stops it)."""
    cams = {"front": SMALL}
    with Pipeline(root, fps=FPS, cameras=cams, backend="thread") as pipe:
        for k in range(n):
            pipe.add_frame(flat_frame(cams, k), task="t")
        result = pipe.finish_episode()
    assert_flat_episode(result, [value_of(k) for k in range(n)])


def svtav1_opens(height: int, width: int) -> bool:
    """Whether this PyAV's libsvtav1 opens at that size, asked of PyAV directly: SVT-AV1 4.1
    (PyAV 18's wheel) refuses sides under 4 pixels, 4.2 (PyAV 19's) pads and encodes them."""
    ctx = av.CodecContext.create("libsvtav1", "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = width, height, "yuv420p", Fraction(1, FPS)
    try:
        ctx.open()
    except av.FFmpegError:
        return False
    return True


def assert_refused_before_anything_is_written(root: Path, shape: tuple) -> None:
    exc = refused(root, cameras={"front": shape})
    print(f"{shape}: {exc}")
    assert isinstance(exc, ValueError), repr(exc)
    h, w, _ = shape
    assert re.search(rf"front|{w}x{h}|{h}x{w}|\({h}, {w}, 3\)", str(exc)), str(exc)
    assert not (root / "meta" / "info.json").exists()
    assert episode_files(root) == []
    record_one_episode(root)


@pytest.mark.parametrize("shape", [(8, 16400, 3), (9000, 8, 3)])
def test_frame_sizes_the_encoder_cannot_open_are_refused_before_anything_is_written(
    tmp_path, shape
):
    assert not svtav1_opens(*shape[:2])  # over SVT-AV1's 16384 x 8704 in every release
    assert_refused_before_anything_is_written(tmp_path, shape)


@pytest.mark.parametrize("shape", [(2, 2, 3), (1, 64, 3), (64, 1, 3)])
def test_tiny_frames_are_refused_at_start_or_recorded_whole_as_the_encoder_here_decides(
    tmp_path, shape
):
    """The probe at start() follows the encoder, not a table of sizes: where it cannot open a
    side under 4 pixels (PyAV <= 18) nothing is written; where it can (PyAV 19), every frame is
    in the video."""
    if not svtav1_opens(*shape[:2]):
        assert_refused_before_anything_is_written(tmp_path, shape)
        return
    cams = {"front": shape}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="thread") as pipe:
        for k in range(5):
            pipe.add_frame(flat_frame(cams, k), task="t")
        result = pipe.finish_episode()
    assert_flat_episode(result, [value_of(k) for k in range(5)])


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "c" * 300, "x\0y"])
def test_camera_names_that_are_no_valid_folder_are_refused(tmp_path, name):
    exc = refused(tmp_path, cameras={name: SMALL})
    assert isinstance(exc, ValueError), repr(exc)
    assert re.search(r"camera|name", str(exc), re.IGNORECASE), str(exc)
    assert not (tmp_path / "meta" / "info.json").exists()
    record_one_episode(tmp_path)


@pytest.mark.parametrize("shape", [(0,), (3, 0), ()])
def test_empty_feature_shapes_are_refused(tmp_path, shape):
    exc = refused(tmp_path, cameras={"front": SMALL}, features={"observation.state": shape})
    assert isinstance(exc, ValueError), repr(exc)
    assert "observation.state" in str(exc), str(exc)
    assert not (tmp_path / "meta" / "info.json").exists()
    record_one_episode(tmp_path)


def test_fps_must_be_a_true_integer_and_numpy_integers_count(tmp_path):
    for bad in (True, 30.0, 0, -30, "30"):
        with pytest.raises(ValueError, match="fps"):
            Pipeline(tmp_path, fps=bad, cameras={"front": SMALL})
    cams = {"front": SMALL}
    with Pipeline(tmp_path, fps=np.int64(30), cameras=cams, backend="thread") as pipe:
        for k in range(3):
            pipe.add_frame(flat_frame(cams, k), task="t")
        result = pipe.finish_episode()
    info = json.loads((tmp_path / "meta" / "info.json").read_text())
    assert info["fps"] == 30 and type(info["fps"]) is int
    assert_flat_episode(result, [value_of(k) for k in range(3)])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "64"])
def test_ring_slots_that_are_no_positive_integer_are_refused_at_construction(tmp_path, bad):
    with pytest.raises(ValueError, match="ring_slots"):
        Pipeline(tmp_path, fps=FPS, cameras={"front": SMALL}, ring_slots=bad)


def test_fps_above_what_svt_av1_encodes_is_refused_saying_so(tmp_path):
    pipe = Pipeline(tmp_path / "ds", fps=300, cameras={"front": (32, 32, 3)})
    with pytest.raises(ConfigError, match=r"fps 300: SVT-AV1 \(libsvtav1\) encodes at most 240"):
        pipe.start()
    pipe.close()
    assert not (tmp_path / "ds").exists()
