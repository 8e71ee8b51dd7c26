"""Every codec LeRobot offers: its option mapping, software codecs recording frame-exact videos,
"auto" choosing an encoder that really encodes here, and names this machine cannot use refused."""

from __future__ import annotations

import json
import logging

import av
import numpy as np
import pytest

from shmpipe import ConfigError, Pipeline, VideoEncoderConfig
from shmpipe.video import codecs
from shmpipe.video.codecs import AUTO_ORDER, codec_options
from tests.helpers.frames import smooth_frame
from tests.helpers.media import decode_video, psnr

FPS, N = 30, 20
CAMERAS = {"cam": (64, 96, 3)}


def record(root, encoder: VideoEncoderConfig, n: int = N):
    """Record one episode of smooth frames; the pipeline's last status(), the result, the
    frames."""
    added = [smooth_frame(i, *CAMERAS["cam"][:2]) for i in range(n)]
    with Pipeline(root, fps=FPS, cameras=CAMERAS, encoder=encoder) as pipe:
        for image in added:
            pipe.add_frame({"cam": image}, task="look")
        result = pipe.finish_episode()
        status = pipe.status()
    return status, result, added


def info(root) -> dict:
    return json.loads((root / "meta" / "info.json").read_text())


@pytest.mark.parametrize(
    "vcodec, codec", [("libsvtav1", "av1"), ("h264", "h264"), ("hevc", "hevc")]
)
def test_every_software_codec_records_every_frame_in_place(tmp_path, vcodec, codec):
    _, result, added = record(tmp_path / "rec", VideoEncoderConfig(vcodec=vcodec))
    frames, times = decode_video(result.videos["cam"].path)
    assert len(frames) == N, f"{vcodec}: decoded {len(frames)} frames, added {N}"
    np.testing.assert_allclose(times, np.arange(N) / FPS, atol=1e-4, err_msg=vcodec)
    worst = min(psnr(a, b) for a, b in zip(frames, added, strict=True))
    assert worst >= 30.0, f"{vcodec}: worst frame PSNR {worst:.1f} dB < 30 dB"
    entry = info(tmp_path / "rec")["features"]["cam"]["info"]
    assert entry["video.codec"] == codec


def test_auto_takes_the_first_encoder_that_works_here_and_says_why_it_skipped_the_others(
    tmp_path, caplog
):
    """Whichever encoders this machine has (SVT-AV1 at least, maybe a GPU's): "auto" records
    with the first of AUTO_ORDER that opens and encodes, names every one before it with its
    reason, and the dataset says what was used, never "auto"."""
    caplog.set_level(logging.INFO, logger="shmpipe")
    status, result, added = record(tmp_path / "rec", VideoEncoderConfig(vcodec="auto"))
    chosen, notes = status.encoder, status.encoder_notes
    assert chosen in AUTO_ORDER, status
    skipped = [note.split(": ")[0] for note in notes]
    assert skipped == list(AUTO_ORDER[: AUTO_ORDER.index(chosen)]), f"{chosen}: {notes}"
    for name, note in zip(skipped, notes, strict=True):
        reason = note.split(": ", 1)[1]
        if codecs.in_build(name):
            assert reason.startswith(("cannot open", "cannot encode")), note
        else:
            assert reason == "not in this PyAV build", note
    logged = [r.getMessage() for r in caplog.records if f"'auto' chose {chosen};" in r.getMessage()]
    assert len(logged) == 1 and all(note in logged[0] for note in notes), logged
    path = result.videos["cam"].path
    frames, _ = decode_video(path)
    assert len(frames) == N, f"{chosen}: decoded {len(frames)} frames, added {N}"
    worst = min(psnr(a, b) for a, b in zip(frames, added, strict=True))
    assert worst >= 30.0, f"{chosen}: worst frame PSNR {worst:.1f} dB < 30 dB"
    stored = info(tmp_path / "rec")
    assert stored["shmpipe"]["video_encoder"] == VideoEncoderConfig(vcodec=chosen).as_dict()
    with av.open(str(path)) as container:
        in_file = container.streams.video[0].codec_context.codec.canonical_name
    assert stored["features"]["cam"]["info"]["video.codec"] == in_file


def test_auto_resumes_a_dataset_recorded_with_libsvtav1_and_back(tmp_path):
    root = tmp_path / "rec"
    record(root, VideoEncoderConfig(), n=3)
    record(root, VideoEncoderConfig(vcodec="auto"), n=3)
    record(root, VideoEncoderConfig(), n=3)
    assert info(root)["total_episodes"] == 3


@pytest.mark.parametrize(
    "vcodec, pattern",
    [
        ("libaom-av1", r"'libaom-av1' is not in this machine's PyAV.*here: \[.*'libsvtav1'"),
        ("mpeg9", r"'mpeg9' is unknown; expected one of \[.*'h264_nvenc'.*'libsvtav1'"),
    ],
)
def test_codecs_this_machine_lacks_are_refused_at_start_with_the_list(tmp_path, vcodec, pattern):
    root = tmp_path / "rec"
    pipe = Pipeline(root, fps=FPS, cameras=CAMERAS, encoder=VideoEncoderConfig(vcodec=vcodec))
    with pytest.raises(ConfigError, match=pattern):
        pipe.start()
    assert not (root / "meta" / "info.json").exists(), "a refused start() wrote the dataset"


def options(vcodec: str, **settings) -> dict[str, str]:
    config = VideoEncoderConfig(vcodec=vcodec, **settings)
    return codec_options(vcodec, config.crf, config.g, config.preset, config.fast_decode,
                         config.extra_options, threads=2)  # fmt: skip


NO_BF = {"bf": "0"}  # H.264/HEVC: no B-frames, or fragmented MP4 timestamps shift
MAPPING = [  # vcodec, settings, options besides g=2
    ("libsvtav1", {},
     {"crf": "30", "preset": "12", "svtav1-params": "fast-decode=0:lp=2:lookahead=0"}),
    ("h264", {"preset": "veryfast"}, {"crf": "30", "preset": "veryfast", "threads": "2", **NO_BF}),
    ("hevc", {"preset": 1, "fast_decode": 1},
     {"crf": "30", "preset": "superfast", "tune": "fastdecode", "threads": "2", **NO_BF}),
    ("libaom-av1", {}, {"crf": "30", "threads": "2", "row-mt": "1"}),
    ("h264_nvenc", {"preset": "p4"}, {"rc": "0", "qp": "30", "preset": "p4", **NO_BF}),
    ("av1_nvenc", {}, {"rc": "0", "qp": "30"}),
    ("h264_qsv", {"preset": "fast"}, {"global_quality": "30", "preset": "fast", **NO_BF}),
    ("h264_vaapi", {}, {"qp": "30", **NO_BF}),
    ("hevc_videotoolbox", {}, {"q:v": "40", **NO_BF}),
    ("h264_v4l2m2m", {}, {"crf": "30", **NO_BF}),
]  # fmt: skip


@pytest.mark.parametrize("vcodec, settings, expected", MAPPING)
def test_options_follow_lerobots_mapping(vcodec, settings, expected):
    assert options(vcodec, **settings) == {"g": "2", **expected}


def test_extra_options_add_but_do_not_replace_mapped_ones():
    got = options("h264", extra_options={"crf": "10", "tune": "zerolatency"})
    assert got["crf"] == "30" and got["tune"] == "zerolatency"
    svt = options("libsvtav1", extra_options={"svtav1-params": "lp=1:lookahead=0"})
    assert svt["svtav1-params"] == "fast-decode=0:lp=2:lookahead=0:lp=1:lookahead=0"  # last wins


def test_an_svtav1_preset_number_is_refused_for_x264():
    with pytest.raises(ConfigError, match="preset 12 is not a h264 preset"):
        options("h264", preset=12)
