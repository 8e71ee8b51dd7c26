"""Bad input and calls in the wrong state raise clear errors; recording then goes on intact."""

from __future__ import annotations

import numpy as np
import pytest

from shmpipe import Pipeline
from tests.helpers.frames import smooth_frame, textured_frame
from tests.helpers.media import decode_video
from tests.helpers.oracles import exact_image_stats

H, W = 48, 64
CAMERAS = {"front": (H, W, 3), "wrist": (H, W, 3)}
FEATURES = {"observation.state": (6,)}


def good(i: int = 0) -> dict:
    return {
        "front": smooth_frame(i, H, W),
        "wrist": smooth_frame(i, H, W, 0.5),
        "observation.state": np.full(6, float(i), np.float32),
    }


def with_(**changes) -> dict:
    frame = good()
    for key, value in changes.items():
        if value is ...:
            del frame[key]
        else:
            frame[key] = value
    return frame


BAD_FRAMES = {
    "wrong shape": (with_(front=np.zeros((H, W + 1, 3), np.uint8)), r"'front'.*\(48, 64, 3\)"),
    "grayscale": (with_(front=np.zeros((H, W), np.uint8)), r"'front'.*shape"),
    "rgba": (with_(front=np.zeros((H, W, 4), np.uint8)), r"'front'.*shape"),
    "int32 dtype": (with_(wrist=np.zeros((H, W, 3), np.int32)), r"'wrist'.*uint8.*int32"),
    "float out of range": (with_(front=np.full((H, W, 3), 2.0)), r"'front'.*\[0, 1\]"),
    "float with nan": (with_(front=np.full((H, W, 3), np.nan)), r"'front'.*NaN"),
    "not an array": (with_(front=[[0, 1]]), r"'front'.*numpy array"),
    "missing camera": (with_(wrist=...), r"missing \['wrist'\]"),
    "unknown key": (with_(extra=np.zeros(3)), r"unknown \['extra'\]"),
    "missing feature": (with_(**{"observation.state": ...}), r"missing \['observation.state'\]"),
    "inf in a float32 feature (its fast path)": (
        with_(**{"observation.state": np.array([0, 0, 0, np.inf, 0, 0], np.float32)}),
        r"'observation.state'.*NaN or inf at positions \[3\]",
    ),
    "nan in feature": (
        with_(**{"observation.state": np.array([0, 1, np.nan, 0, 0, 0.0])}),
        r"'observation.state'.*NaN.*\[2\]",
    ),
    "inf in feature": (
        with_(**{"observation.state": np.array([np.inf] + [0.0] * 5)}),
        r"'observation.state'.*NaN or inf",
    ),
    "feature wrong length": (
        with_(**{"observation.state": np.zeros(5)}),
        r"'observation.state'.*\(6,\).*\(5,\)",
    ),
    "feature not numeric": (with_(**{"observation.state": "abc"}), r"'observation.state'"),
    "not a dict": ([1, 2, 3], r"dict"),
    "bool dtype": (with_(front=np.zeros((H, W, 3), bool)), r"'front'.*uint8.*bool"),
    "batch of frames": (with_(front=np.zeros((2, H, W, 3), np.uint8)), r"'front'.*shape"),
    "transposed width and height": (with_(front=np.zeros((W, H, 3), np.uint8)), r"'front'"),
    "complex feature": (
        with_(**{"observation.state": np.zeros(6, complex)}),
        r"'observation.state'",
    ),
    "feature beyond float32": (  # finite in float64, inf once stored as float32
        with_(**{"observation.state": [0.0, 1e39, 0.0, 0.0, 0.0, 0.0]}),
        r"'observation.state'.*positions \[1\].*float32",
    ),
    "large feature beyond float32": (
        with_(**{"observation.state": np.array([-1e39] + [0.0] * 5)}),
        r"'observation.state'.*positions \[0\].*float32",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_frame_raises_value_error_naming_the_key(case, running_pipe):
    frame, pattern = BAD_FRAMES[case]
    with pytest.raises(ValueError, match=pattern):
        running_pipe.add_frame(frame, task="t")
    assert running_pipe.status().episode_frames == 0, "a refused frame must not be counted"


def test_a_feature_of_many_values_beyond_float32_is_refused(tmp_path):
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, features={"big": (100,)},
                  backend="thread") as pipe:  # fmt: skip
        frame = {"front": good()["front"], "wrist": good()["wrist"], "big": np.zeros(100)}
        frame["big"][70] = 4e38
        with pytest.raises(ValueError, match=r"'big'.*positions \[70\].*float32"):
            pipe.add_frame(frame, task="t")
        frame["big"][70] = 3e38  # fits
        pipe.add_frame(frame, task="t")
        assert pipe.episode_frames == 1


@pytest.mark.parametrize("task", ["bad \ud800", "", None, b"bytes"])
def test_task_that_cannot_be_stored_as_utf8_is_refused_at_add_frame(task, running_pipe):
    with pytest.raises(ValueError, match=r"task"):
        running_pipe.add_frame(good(), task=task)
    assert running_pipe.episode_frames == 0
    running_pipe.add_frame(good(), task="fine \u00e9")  # and the episode goes on
    assert running_pipe.finish_episode().tasks == ["fine \u00e9"]


@pytest.fixture
def running_pipe(tmp_path):
    with Pipeline(tmp_path, fps=30, cameras=CAMERAS, features=FEATURES, backend="thread") as pipe:
        yield pipe


def test_recording_goes_on_after_every_kind_of_bad_input(tmp_path, backend):
    with Pipeline(tmp_path / "rec", fps=30, cameras=CAMERAS, features=FEATURES) as pipe:
        added = 0
        for i, (frame, _) in enumerate(BAD_FRAMES.values()):
            pipe.add_frame(good(i), task="t")
            added += 1
            with pytest.raises(ValueError):
                pipe.add_frame(frame, task="t")
        for bad_task in (None, 3, ""):
            with pytest.raises(ValueError, match="task"):
                pipe.add_frame(good(), task=bad_task)
        result = pipe.finish_episode()
    assert result.num_frames == added
    for name in CAMERAS:
        frames, _ = decode_video(result.videos[name][0])
        assert len(frames) == added
    assert result.stats["observation.state"]["max"].tolist() == [added - 1.0] * 6


def test_calls_in_the_wrong_state_raise_runtime_error(tmp_path):
    pipe = Pipeline(tmp_path / "rec", fps=30, cameras=CAMERAS, features=FEATURES, backend="thread")
    with pytest.raises(RuntimeError, match="start"):
        pipe.add_frame(good(), task="t")
    with pytest.raises(RuntimeError, match="start"):
        pipe.finish_episode()
    pipe.start()
    with pytest.raises(RuntimeError, match="already started"):
        pipe.start()
    with pytest.raises(RuntimeError, match="no frames"):
        pipe.finish_episode()
    pipe.cancel_episode()  # nothing open: a no-op
    pipe.add_frame(good(), task="t")
    assert pipe.finish_episode().num_frames == 1
    pipe.close()
    pipe.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        pipe.add_frame(good(), task="t")
    with pytest.raises(RuntimeError, match="closed"):
        pipe.start()


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"fps": 0}, "fps"),
        ({"fps": 29.97}, "fps"),
        ({"cameras": {}}, "at least one camera"),
        ({"cameras": {"c": (10, 10, 4)}}, "'c'.*height, width, 3"),
        ({"features": {"front": (3,)}}, "both as camera and feature"),
        ({"features": {"timestamp": (1,)}}, "reserved"),
        ({"overflow": "drop"}, "overflow"),
        ({"backend": "gpu"}, "backend"),
    ],
)
def test_bad_configuration_is_refused_up_front(tmp_path, kwargs, pattern):
    args = {"root": tmp_path, "fps": 30, "cameras": CAMERAS, "features": FEATURES, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        Pipeline(**args)


def test_unknown_backend_in_environment_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SHMPIPE_BACKEND", "fork")
    with pytest.raises(ValueError, match="SHMPIPE_BACKEND"):
        Pipeline(tmp_path, fps=30, cameras=CAMERAS)


def test_non_contiguous_and_read_only_frames_are_recorded_like_plain_ones(tmp_path, backend):
    """Views (a crop, a flipped image) and read-only arrays are valid input, not errors: the
    pixels that reach the workers are exactly the view's (the exact stats prove it)."""
    base = [textured_frame(i, H, 2 * W) for i in range(6)]
    crops = [big[::-1, ::2] for big in base]  # non-contiguous, negative strides
    frozen = [np.ascontiguousarray(big[:, :W]) for big in base]
    for f in frozen:
        f.setflags(write=False)
    with Pipeline(tmp_path / "rec", fps=30, cameras=CAMERAS, features=FEATURES) as pipe:
        for crop, still in zip(crops, frozen, strict=True):
            state = np.arange(12, dtype=np.float32)[::2]  # a strided feature too
            pipe.add_frame({"front": crop, "wrist": still, "observation.state": state}, task="t")
        result = pipe.finish_episode()
    for name, frames in (("front", crops), ("wrist", frozen)):
        assert len(decode_video(result.videos[name][0])[0]) == 6
        expected = exact_image_stats(frames)
        for key, value in expected.items():
            np.testing.assert_allclose(result.stats[name][key], value, rtol=1e-12, err_msg=key)


def test_status_and_cancel_before_start_raise_runtime_error(tmp_path):
    pipe = Pipeline(tmp_path, fps=30, cameras=CAMERAS, backend="thread")
    with pytest.raises(RuntimeError, match="start"):
        pipe.status()
    with pytest.raises(RuntimeError, match="start"):
        pipe.cancel_episode()
    pipe.close()  # closing a never-started pipeline is fine
