"""opencv: cameras are asked for a pixel format (MJPG unless the spec names one) before their
size, and report what they accepted. A fake cv2 (no OpenCV needed) plays a USB camera that
offers some formats and sizes and keeps its own when asked for others, as V4L2 does."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from shmpipe import ConfigError
from shmpipe.tools.sources import open_source, opencv_options
from shmpipe.tools.sources.opencv import fourcc_code, fourcc_text

WIDTH, HEIGHT, FOURCC, FPS = 3, 4, 6, 5  # cv2's CAP_PROP_* numbers


class FakeCamera:
    """cv2.VideoCapture of a camera offering `formats` at `sizes` (width, height); starts in
    YUYV 640x480. Every set() call is kept in `calls` (name, value)."""

    formats = ("YUYV", "MJPG")
    sizes = ((640, 480), (1280, 720))
    opened: list[FakeCamera] = []

    def __init__(self, device):
        self.device, self.calls = device, []
        self.props = {FOURCC: float(fourcc_code("YUYV")), WIDTH: 640.0, HEIGHT: 480.0, FPS: 30.0}
        FakeCamera.opened.append(self)

    def isOpened(self):  # noqa: N802 (cv2's name)
        return True

    def set(self, prop, value):
        self.calls.append(({WIDTH: "width", HEIGHT: "height", FOURCC: "fourcc",
                            FPS: "fps"}[prop], value))  # fmt: skip
        if prop == FOURCC and fourcc_text(int(value)) not in self.formats:
            return False
        if prop == WIDTH and value not in [w for w, _ in self.sizes]:
            return False
        if prop == HEIGHT and value not in [h for _, h in self.sizes]:
            return False
        self.props[prop] = float(value)
        return True

    def get(self, prop):
        return self.props.get(prop, 0.0)

    def read(self, image=None):
        shape = (int(self.props[HEIGHT]), int(self.props[WIDTH]), 3)
        if image is None or image.shape != shape:
            image = np.empty(shape, np.uint8)
        image[...] = (10, 20, 30)  # BGR
        return True, image

    def release(self):
        pass


def convert(src, code, dst=None):
    out = dst if dst is not None and dst.shape == src.shape else np.empty_like(src)
    out[...] = src[..., ::-1]
    return out


@pytest.fixture
def fake_cv2(monkeypatch):
    FakeCamera.opened = []
    cv2 = types.SimpleNamespace(VideoCapture=FakeCamera, cvtColor=convert, COLOR_BGR2RGB=4,
                                CAP_PROP_FRAME_WIDTH=WIDTH, CAP_PROP_FRAME_HEIGHT=HEIGHT,
                                CAP_PROP_FOURCC=FOURCC, CAP_PROP_FPS=FPS,
                                CAP_PROP_POS_FRAMES=1)  # fmt: skip
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    monkeypatch.setenv("OPENCV_LOG_LEVEL", "INFO")  # leave the test process's environment be
    return cv2


def test_a_camera_is_asked_for_mjpg_before_its_size_and_says_what_it_accepted(fake_cv2):
    with open_source("opencv:0:1280x720", 30) as source:
        camera = FakeCamera.opened[0]
        frame = np.empty(source.shape, np.uint8)
        source.read_into(frame)
        description = source.describe()
    assert camera.device == 0
    assert [name for name, _ in camera.calls] == ["fourcc", "width", "height", "fps"]
    assert fourcc_text(int(camera.calls[0][1])) == "MJPG"
    assert camera.calls[1:] == [("width", 1280), ("height", 720), ("fps", 30)]
    assert source.shape == (720, 1280, 3) and frame[0, 0].tolist() == [30, 20, 10]
    assert description == "1280x720 MJPG 30 fps"


def test_a_named_pixel_format_is_asked_for_and_a_refused_one_is_reported(fake_cv2):
    with open_source("opencv:/dev/null:yuyv", 30) as source:  # any path that exists
        assert fourcc_text(int(FakeCamera.opened[-1].calls[0][1])) == "YUYV"
        assert source.describe() == "640x480 YUYV 30 fps"
    with open_source("opencv:2:800x600:H264", 30) as source:
        assert source.shape == (480, 640, 3)
        assert source.describe() == "640x480 YUYV 30 fps (the camera refused 800x600 H264)"


def test_a_size_or_format_given_for_a_video_file_is_refused(fake_cv2, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    with pytest.raises(ConfigError, match="a size or pixel format is for cameras"):
        open_source(f"opencv:{clip}:640x480", 30)


@pytest.mark.parametrize(
    ("arg", "parsed"),
    [
        ("0", ("0", None, None)),
        ("0:640x480:MJPG", ("0", (480, 640), "MJPG")),
        ("0:mjpg:640x480", ("0", (480, 640), "MJPG")),
        ("/dev/video2:1280x720", ("/dev/video2", (720, 1280), None)),
        ("/data/take:1.mp4", ("/data/take:1.mp4", None, None)),
    ],
)
def test_opencv_spec_options_are_split_off_the_end(arg, parsed):
    assert opencv_options(arg) == parsed
