"""Camera sources: each writes the newest frame into the caller's buffer, in order, paced, and
fails with an error that names it."""

from __future__ import annotations

import glob
import os
import sys
import time

import av
import numpy as np
import pytest

from shmpipe import ConfigError, Pipeline, VideoEncoderConfig
from shmpipe.tools.sources import Capture, FrameSource, SourceError, open_source
from tests.helpers.frames import smooth_frame
from tests.helpers.media import decode_video, psnr

H, W, CLIP_FRAMES = 96, 128, 48
BLOCK = (slice(8, 40), slice(8, 40))  # a flat square whose grey level counts the frames
FAST_FPS = 240  # paces a 48-frame clip through in 0.2 s
MOTION = 12  # clip frame i shows smooth_frame(MOTION * i)
FAITHFUL = VideoEncoderConfig(crf=10)  # AV1 close enough to tell neighbouring frames apart


def counter_value(i: int) -> int:
    return 20 + 4 * i


def frame_number(image: np.ndarray) -> int:
    return round((float(image[BLOCK].mean()) - 20) / 4)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """48 frames of 96x128 H.264 (nearly lossless); frame i has a grey block of 20 + 4 i. The
    gradient moves 12 frames' worth per frame, so neighbours are ~25 dB apart, far below the
    ~40 dB a recording keeps: at 1x they were 46 dB apart, and SVT-AV1 4.2 (PyAV 19) put a
    recorded frame at 40.69 dB from its own source frame and 40.71 from the one before."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "4"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(CLIP_FRAMES):
            image = smooth_frame(MOTION * i, H, W)
            image[BLOCK] = counter_value(i)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def clip_frames(clip):
    frames, _ = decode_video(clip)
    assert [frame_number(f) for f in frames] == list(range(CLIP_FRAMES))
    return frames


def read_for(source: FrameSource, seconds: float, until_sequence: int | None = None
             ) -> list[tuple[Capture, np.ndarray]]:  # fmt: skip
    """Read like a fast control loop would, keeping what each read delivered: for `seconds`,
    or, given `until_sequence`, until that frame arrived (at most 10 s, on a loaded machine)."""
    got = []
    deadline = time.monotonic() + (seconds if until_sequence is None else 10.0)
    while time.monotonic() < deadline:
        out = np.empty(source.shape, np.uint8)
        got.append((source.read_into(out), out))
        if until_sequence is not None and got[-1][0].sequence >= until_sequence:
            break
        time.sleep(0.001)
    return got


def distinct(got: list[tuple[Capture, np.ndarray]]) -> dict[int, np.ndarray]:
    return {capture.sequence: image for capture, image in got}


# -- file: -------------------------------------------------------------------------------------
def test_file_source_delivers_the_clips_frames_in_order_and_loops(clip):
    with open_source(f"file:{clip}", FAST_FPS) as source:
        assert source.shape == (H, W, 3)
        got = read_for(source, 0.35, until_sequence=CLIP_FRAMES + 10)
    frames = distinct(got)
    assert max(frames) >= CLIP_FRAMES + 10, f"only {max(frames)} frames in 10 s: it never looped"
    wrong = {seq: frame_number(f) for seq, f in frames.items() if frame_number(f) != seq % 48}
    assert not wrong, f"sequence -> clip frame delivered, out of order: {wrong}"
    times = [capture.time for capture, _ in got]
    assert times == sorted(times)


def test_file_source_is_paced_at_the_recording_fps(clip):
    with open_source(f"file:{clip}", 30) as source:
        got = read_for(source, 0.5)
    sequences = sorted(distinct(got))
    assert 11 <= len(sequences) <= 19, f"{len(sequences)} distinct frames in 0.5 s at 30 fps"
    assert sequences == list(range(sequences[0], sequences[-1] + 1)), "frames were skipped"
    first_time = {}
    for capture, _ in got:
        first_time.setdefault(capture.sequence, capture.time)
    gaps = np.diff([first_time[s] for s in sequences])
    assert np.median(gaps) == pytest.approx(1 / 30, abs=0.01)


def test_file_source_scales_to_the_size_asked_for(clip):
    with open_source(f"file:{clip}", 30, size=(48, 64)) as source:
        assert source.shape == (48, 64, 3)
        source.read_into(np.empty((48, 64, 3), np.uint8))


# -- opencv: -----------------------------------------------------------------------------------
def test_opencv_source_on_a_video_file_delivers_the_same_frames_as_pyav(clip, clip_frames):
    with open_source(f"opencv:{clip}", FAST_FPS) as source:
        assert source.shape == (H, W, 3)
        frames = distinct(read_for(source, 0.35, until_sequence=CLIP_FRAMES + 10))
        assert source.reads_in_place and source.converts_in_place
    assert max(frames) >= CLIP_FRAMES + 10, "the opencv source did not loop over the file"
    for seq, image in frames.items():
        score = psnr(image, clip_frames[seq % CLIP_FRAMES])
        assert score >= 30, f"sequence {seq}: {score:.1f} dB against PyAV's frame {seq % 48}"


def test_opencv_source_falls_back_to_a_copy_when_opencv_ignores_the_buffer(
    clip, clip_frames, monkeypatch
):
    cv2 = pytest.importorskip("cv2")
    real_capture, real_convert = cv2.VideoCapture, cv2.cvtColor

    class IgnoresImage:  # as OpenCV does when the given array does not fit
        def __init__(self, *args):
            self._cap = real_capture(*args)

        def read(self, image=None):
            return self._cap.read()

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", IgnoresImage)
    monkeypatch.setattr(cv2, "cvtColor", lambda src, code, dst=None: real_convert(src, code))
    with open_source(f"opencv:{clip}", FAST_FPS) as source:
        frames = distinct(read_for(source, 0.1))
        assert not source.reads_in_place and not source.converts_in_place
    for seq, image in frames.items():
        assert psnr(image, clip_frames[seq % CLIP_FRAMES]) >= 30, f"sequence {seq} is wrong"


def test_opencv_source_that_stops_delivering_raises_naming_it(clip, monkeypatch):
    cv2 = pytest.importorskip("cv2")
    real_capture = cv2.VideoCapture

    class DiesAfterTwoFrames:
        def __init__(self, *args):
            self._cap, self._reads = real_capture(*args), 0

        def read(self, image=None):
            self._reads += 1
            return self._cap.read(image=image) if self._reads <= 2 else (False, None)

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", DiesAfterTwoFrames)
    spec = f"opencv:{clip}"
    with open_source(spec, FAST_FPS) as source:
        out = np.empty(source.shape, np.uint8)
        with pytest.raises(SourceError, match=spec):
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                source.read_into(out)
                time.sleep(0.005)


def test_opencv_source_without_opencv_says_how_to_install_it(clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ConfigError, match=r"pip install 'shmpipe\[camera\]'"):
        open_source(f"opencv:{clip}", 30)


@pytest.mark.skipif(not glob.glob("/dev/video*"), reason="no camera device on this machine")
def test_opencv_source_on_a_real_camera():
    device = sorted(glob.glob("/dev/video*"))[0]
    with open_source(f"opencv:{device}", 30) as source:
        frames = distinct(read_for(source, 1.0))
    assert len(frames) >= 5, f"{device} delivered {len(frames)} distinct frames in 1 s"


# -- synthetic: and what every source shares ---------------------------------------------------
def test_synthetic_source_fills_the_buffer_with_new_content_every_call():
    with open_source("synthetic:48x64", 30) as source:
        assert source.shape == (48, 64, 3)
        images, sequences = [], []
        for _ in range(5):
            out = np.zeros(source.shape, np.uint8)
            sequences.append(source.read_into(out).sequence)
            images.append(out)
    assert sequences == list(range(sequences[0], sequences[0] + 5))
    assert all(image.std() > 10 for image in images), "no content"
    assert all(not np.array_equal(a, b) for a, b in zip(images, images[1:], strict=False))
    assert open_source("synthetic", 30).shape == (480, 640, 3)


@pytest.mark.parametrize("bad", ["non-contiguous", "read-only", "wrong shape", "float"])
@pytest.mark.parametrize("kind", ["synthetic", "file", "opencv"])
def test_read_into_refuses_a_buffer_it_cannot_fill_naming_the_source(clip, kind, bad):
    spec = "synthetic:96x128" if kind == "synthetic" else f"{kind}:{clip}"
    out = {
        "non-contiguous": np.zeros((H, 2 * W, 3), np.uint8)[:, ::2],
        "read-only": np.zeros((H, W, 3), np.uint8),
        "wrong shape": np.zeros((W, H, 3), np.uint8),
        "float": np.zeros((H, W, 3), np.float32),
    }[bad]
    out.flags.writeable = bad != "read-only"
    with open_source(spec, 30) as source, pytest.raises(ConfigError, match=spec):
        source.read_into(out)


@pytest.mark.parametrize("spec", ["webcam:0", "file:", "opencv:", "synthetic:48", "synthetic:0x64",
                                  "synthetic:48x64x3", "", "clip.mp4"])  # fmt: skip
def test_a_bad_spec_names_it_and_the_accepted_forms(spec):
    with pytest.raises(ConfigError, match=f"{spec!r}.*synthetic:<height>x<width>"):
        open_source(spec, 30)


@pytest.mark.parametrize("kind", ["file", "opencv"])
def test_a_missing_or_unreadable_file_raises_naming_the_source(tmp_path, kind):
    missing = f"{kind}:{tmp_path / 'missing.mp4'}"
    with pytest.raises(SourceError, match=missing):
        open_source(missing, 30)
    (tmp_path / "notes.mp4").write_text("not a video")
    garbage = f"{kind}:{tmp_path / 'notes.mp4'}"
    with pytest.raises(SourceError, match=garbage):
        open_source(garbage, 30)


def test_read_after_close_raises_naming_the_source(clip):
    source = open_source(f"file:{clip}", 30)
    source.close()
    source.close()  # twice is fine
    with pytest.raises(SourceError, match="file:"):
        source.read_into(np.empty(source.shape, np.uint8))


# -- recording through the real pipeline -------------------------------------------------------
@pytest.mark.parametrize("kind", ["synthetic", "file"])
def test_frames_read_into_loaned_slots_are_recorded_as_the_source_made_them(tmp_path, clip, kind):
    spec = "synthetic:96x128" if kind == "synthetic" else f"file:{clip}"
    n, fps = 30, 30
    made = []
    source = open_source(spec, fps)
    with (
        source,
        Pipeline(tmp_path, fps=fps, cameras={"cam": source.shape}, encoder=FAITHFUL) as pipe,
    ):
        next_tick = time.monotonic()
        for _ in range(n):
            buf = pipe.loan("cam")
            source.read_into(buf)
            made.append(buf.copy())
            pipe.add_frame({"cam": buf}, task="t")
            if kind == "file":  # a real loop is paced; the synthetic source is paced by it
                next_tick += 1 / fps
                time.sleep(max(0.0, next_tick - time.monotonic()))
        result = pipe.finish_episode()
    frames, _ = decode_video(result.videos["cam"].path)
    assert len(frames) == n
    for i, frame in enumerate(frames):
        scores = {j: psnr(frame, made[j]) for j in (i - 1, i, i + 1) if 0 <= j < n}
        # 30 dB: yuv420p drops the synthetic source's per-channel noise; neighbours score ~25
        # (the file's clip moves fast for the same reason: see clip)
        assert scores[i] >= 30, f"frame {i}: {scores[i]:.1f} dB from what the source made"
        assert scores[i] == max(scores.values()), f"frame {i} is not where it was read: {scores}"


def test_opencv_source_whose_open_blocks_gives_up_within_its_timeout(tmp_path, monkeypatch):
    pytest.importorskip("cv2")
    from shmpipe.tools.sources import opencv

    fifo = tmp_path / "camera.fifo"
    os.mkfifo(fifo)  # no writer: opening it for reading waits forever
    monkeypatch.setattr(opencv, "OPEN_TIMEOUT_S", 0.5)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"camera\.fifo.*did not finish within 0\.5 s"):
        open_source(f"opencv:{fifo}", 30)
    assert time.monotonic() - started < 2.0
    try:  # let the abandoned open return (it then fails and releases its capture)
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass
