"""The live preview (Pipeline(preview=...)): what it shows, and that it never costs a frame.

It saves to a Rerun file that is read back; and with a viewer that is absent, never reads, is
killed or stopped, or a sink that blocks, every frame still reaches the video and no call waits
(a hang would be caught by the timeout)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

import numpy as np
import pytest

from shmpipe import ConfigError, Pipeline, PreviewConfig
from tests.helpers.episodes import assert_marked_episode
from tests.helpers.frames import marked_frames
from tests.helpers.rerun_file import read_rrd

pytest.importorskip("rerun")

CAMERAS = {"front": (240, 320, 3), "wrist": (96, 128, 3)}
FEATURES = {"observation.state": (3,), "action": (2,)}
N = 45
FRAMES = {name: marked_frames(N, h, w, phase=i / 3) for i, (name, (h, w, _)) in
          enumerate(CAMERAS.items())}  # fmt: skip


def row_of(k: int) -> dict:
    return {"observation.state": np.arange(3, dtype=np.float32) + k,
            "action": np.array([k, -k], np.float32)}  # fmt: skip


def record(pipe: Pipeline, start: int, stop: int, between=lambda k: None) -> None:
    """Frames start..stop-1 at 30 Hz; `between(k)` after each."""
    for k in range(start, stop):
        pipe.add_frame({**{c: FRAMES[c][k] for c in CAMERAS}, **row_of(k)}, task="t")
        between(k)
        time.sleep(1 / 30)


def pipeline(root, preview: PreviewConfig, backend: str = "process") -> Pipeline:
    return Pipeline(root, fps=30, cameras=CAMERAS, features=FEATURES, backend=backend,
                    control_priority=None, preview=preview)  # fmt: skip


def wait_until_showing(pipe: Pipeline) -> None:
    """Until the preview has opened its sink (importing rerun takes a while on a busy machine)."""
    deadline = time.monotonic() + 30
    while not pipe.status().preview.ready:
        assert time.monotonic() < deadline, "the preview never got ready"
        time.sleep(0.05)


def assert_every_frame_recorded(result) -> None:
    for camera in CAMERAS:
        assert_marked_episode(result, camera, FRAMES[camera], N)


@pytest.mark.timeout(90)
def test_preview_saved_to_a_rerun_file_holds_every_camera_downsampled_and_the_series(
    tmp_path, backend
):
    path = tmp_path / "preview.rrd"
    preview = PreviewConfig("save", path=path, max_height=120, fps=30)
    with pipeline(tmp_path / "ds", preview) as pipe:
        wait_until_showing(pipe)
        record(pipe, 0, N)
        result = pipe.finish_episode()
    assert_every_frame_recorded(result)
    logged = read_rrd(path)
    for camera, step in (("front", 2), ("wrist", 1)):
        images = logged.get(f"/{camera}", [])
        assert len(images) >= 2, f"{camera}: {len(images)} pictures in the preview file"
        for frame, image in images:
            expected = FRAMES[camera][frame][::step, ::step]
            np.testing.assert_array_equal(image, expected, err_msg=f"{camera}: frame {frame}")
    for feature in FEATURES:
        series = logged.get(f"/{feature}", [])
        assert len(series) >= 2, f"{feature}: {len(series)} points in the preview file"
        for frame, values in series:
            np.testing.assert_array_equal(values, row_of(frame)[feature], err_msg=feature)


def test_preview_without_rerun_is_a_config_error_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rerun", None)  # as if rerun-sdk were not installed
    pipe = pipeline(tmp_path / "ds", PreviewConfig("save", path=tmp_path / "p.rrd"))
    with pytest.raises(ConfigError, match=r"pip install 'shmpipe\[preview\]'"):
        pipe.start()
    assert not (tmp_path / "ds").exists(), "a refused start() wrote the dataset"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(90)
def test_every_frame_is_recorded_when_no_viewer_listens(tmp_path):
    preview = PreviewConfig("connect", address=f"127.0.0.1:{free_port()}", fps=30)
    with pipeline(tmp_path / "ds", preview) as pipe:
        record(pipe, 0, N)
        result = pipe.finish_episode()
        assert pipe.status().preview.alive
    assert_every_frame_recorded(result)


@pytest.mark.timeout(90)
def test_every_frame_is_recorded_when_the_viewer_accepts_but_never_reads(tmp_path):
    with socket.socket() as viewer:
        viewer.bind(("127.0.0.1", 0))
        viewer.listen(4)  # the kernel accepts connections; nothing ever reads them
        preview = PreviewConfig("connect", address=f"127.0.0.1:{viewer.getsockname()[1]}",
                                fps=30)  # fmt: skip
        with pipeline(tmp_path / "ds", preview) as pipe:
            record(pipe, 0, N)
            result = pipe.finish_episode()
    assert_every_frame_recorded(result)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
def test_every_frame_is_recorded_when_the_preview_worker_dies_or_stops(tmp_path, sig):
    preview = PreviewConfig("save", path=tmp_path / "p.rrd", fps=30)
    with pipeline(tmp_path / "ds", preview) as pipe:
        record(pipe, 0, N // 3)
        first = pipe.status().preview
        os.kill(first.worker_pid, sig)
        record(pipe, N // 3, N)
        result = pipe.finish_episode()
        after = pipe.status().preview
    assert_every_frame_recorded(result)
    if sig == signal.SIGKILL:
        assert after.restarts == 1 and after.alive and after.worker_pid != first.worker_pid
    else:
        assert after.restarts == 0 and after.worker_pid == first.worker_pid
        deadline = time.monotonic() + 5  # close() killed the stopped worker (reaped aside)
        while os.path.exists(f"/proc/{first.worker_pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{first.worker_pid}"), "the stopped preview survived"


@pytest.mark.timeout(90)
def test_a_sink_that_blocks_only_makes_the_preview_lag(tmp_path, monkeypatch):
    from workers.preview_sink import RerunSink

    entered, release = threading.Event(), threading.Event()

    def blocking_image(self, camera, slot):
        entered.set()
        release.wait()

    monkeypatch.setattr(RerunSink, "image", blocking_image)
    preview = PreviewConfig("save", path=tmp_path / "p.rrd", fps=30)
    try:
        with pipeline(tmp_path / "ds", preview, backend="thread") as pipe:
            record(pipe, 0, N)
            assert entered.is_set(), "the preview never logged a picture"
            result = pipe.finish_episode()
    finally:
        release.set()  # the preview thread, stuck all along, may now end
    assert_every_frame_recorded(result)
