"""add_frame is all-or-nothing: interrupted by Ctrl-C at any moment, or failing at its second
camera, it adds the frame to every camera and the rows or to none.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from shmpipe import Pipeline
from tests.helpers.episodes import assert_flat_episode, child_result
from tests.helpers.frames import flat_frame, value_of
from tests.helpers.paths import CHILDREN
from tests.helpers.processes import run_child

FPS = 30
SMALL = (48, 64, 3)


def test_ctrl_c_at_random_moments_inside_add_frame_keeps_every_camera_equal_to_the_rows(
    tmp_path, backend
):
    attempts = 200
    script = str(CHILDREN / "ctrl_c_recorder.py")
    info = run_child([sys.executable, script, str(tmp_path), backend, str(attempts), "9"], 45)
    print(
        f"{backend}: {info['interrupted']} of {attempts} add_frame calls interrupted "
        f"(add_frame ~{info['add_frame_s'] * 1e6:.0f} us); {info['num_frames']} frames; "
        f"finish_episode {info['finish_s']:.2f} s"
    )
    assert info["interrupted"] >= 20, "too few calls were interrupted to prove anything"
    assert info["odd"] == [], info["odd"]
    assert info["finish_s"] < 10, f"finish_episode took {info['finish_s']:.1f} s"
    assert info["num_frames"] == info["rows_before_finish"] == len(info["accepted"])
    assert_flat_episode(child_result(info), info["accepted"])


class CopyFails(np.ndarray):
    """An image whose copy into the pipeline fails with MemoryError (as an allocation might)."""

    def __array_function__(self, func, types, args, kwargs):
        if func in (np.copyto, np.copy, np.array, np.asarray, np.ascontiguousarray):
            raise MemoryError("injected: no memory for this copy")
        return super().__array_function__(func, types, args, kwargs)


@pytest.mark.parametrize("fault", ["wrong_shape", "memory_error"])
def test_add_frame_failing_at_the_second_camera_adds_the_frame_nowhere(tmp_path, fault):
    cams = {"front": SMALL, "wrist": SMALL, "top": SMALL}
    features = {"observation.state": (6,)}
    values = []
    with Pipeline(tmp_path, fps=FPS, cameras=cams, features=features, backend="process") as pipe:
        for k in range(10):
            pipe.add_frame(flat_frame(cams, k, features), task="t")
            values.append(value_of(k))
        bad = flat_frame(cams, 10, features)
        if fault == "wrong_shape":
            bad["wrist"] = np.zeros((64, 48, 3), np.uint8)
            with pytest.raises(ValueError, match="wrist"):
                pipe.add_frame(bad, task="t")
        else:
            bad["wrist"] = bad["wrist"].view(CopyFails)
            try:
                pipe.add_frame(bad, task="t")
            except MemoryError:
                print("add_frame raised MemoryError at camera 'wrist'")
            else:
                print("add_frame copied the image without np.copyto: no MemoryError to survive")
        after = pipe.status().episode_frames
        assert after in (10, 11)
        if after == 11:
            values.append(value_of(10))
        for k in range(11, 21):
            pipe.add_frame(flat_frame(cams, k, features), task="t")
            values.append(value_of(k))
        t0 = time.perf_counter()
        result = pipe.finish_episode()
        took = time.perf_counter() - t0
    print(f"{fault}: finish_episode {took:.2f} s, {result.num_frames} frames")
    assert took < 10, f"finish_episode took {took:.1f} s"
    assert_flat_episode(result, values)
