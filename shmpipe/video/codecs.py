"""The encoders shmpipe accepts, under LeRobot's `vcodec` names, and how LeRobot maps crf, g,
preset and fast_decode to each one's FFmpeg options (lerobot/configs/video.py).

`vcodec="auto"` differs on purpose: LeRobot's only checks that a name is in the FFmpeg build, and
hardware encoders are listed with no hardware (LeRobot #4302); `choose` takes the first one that
really opens and encodes at the real size, and says why it skipped each one before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import av

from shmpipe.errors import ConfigError

AUTO = "auto"
ALIASES = {"av1": "libsvtav1"}  # LeRobot's: a stream's codec name as its encoder's
# vcodec name -> the FFmpeg encoder opened for it. LeRobot's list (its "h264" and "hevc" are what
# PyAV opens for those names: libx264, libx265), the hardware encoders of the same families it
# lacks (AV1 and HEVC on NVIDIA and Intel, V4L2 mem-to-mem on Jetson/Raspberry Pi), and the
# FFmpeg names of x264 and x265, which shmpipe has always accepted.
ENCODERS = {
    "libsvtav1": "libsvtav1",
    "h264": "libx264",
    "hevc": "libx265",
    "libx264": "libx264",
    "libx265": "libx265",
    "libaom-av1": "libaom-av1",
    "h264_nvenc": "h264_nvenc",
    "hevc_nvenc": "hevc_nvenc",
    "av1_nvenc": "av1_nvenc",
    "h264_qsv": "h264_qsv",
    "hevc_qsv": "hevc_qsv",
    "av1_qsv": "av1_qsv",
    "h264_vaapi": "h264_vaapi",
    "h264_videotoolbox": "h264_videotoolbox",
    "hevc_videotoolbox": "hevc_videotoolbox",
    "h264_v4l2m2m": "h264_v4l2m2m",
}
ACCEPTED = (AUTO, *sorted(ENCODERS), *sorted(ALIASES))
# What "auto" tries, best compression first: hardware AV1, hardware HEVC, hardware H.264, and
# SVT-AV1 in software last.
AUTO_ORDER = (
    "av1_nvenc", "av1_qsv",
    "hevc_nvenc", "hevc_qsv", "hevc_videotoolbox",
    "h264_nvenc", "h264_qsv", "h264_videotoolbox", "h264_vaapi", "h264_v4l2m2m",
    "libsvtav1",
)  # fmt: skip
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")  # fmt: skip
SVT_PARAMS = "svtav1-params"
# H.264 and HEVC encoders get no B-frames (LeRobot leaves them on): our crash-safe MP4 is
# fragmented, has no edit list, and B-frames' reorder delay would move every timestamp (by 1
# frame with x264's defaults, 2 with x265's). AV1 reorders inside the codec; pts stay in order.
NO_B_FRAMES = ("libx264", "libx265", "h264_", "hevc_")
# SVT-AV1 with a keyframe every 1 or 2 frames (LeRobot's g=2): its look-ahead changes no bit of
# the file (bench.flush_settings: identical MP4s) but holds ~40 frames instead of ~25, which
# finish_episode waits for and a ring must hold. Longer GOPs keep it (there it changes bytes).
SHORT_GOP_SVT_PARAMS = "lookahead=0"
SHORT_GOP = 2


@dataclass(frozen=True)
class EncoderChoice:
    """The encoder start() opens, and for "auto" one short note per encoder tried before it."""

    encoder: str
    notes: list[str] = field(default_factory=list)


class CameraVideos(dict):
    """Each camera's VideoSettings (shmpipe.video.settings), the EncoderChoice behind them, and
    what they need of this machine (shmpipe.video.capacity.Capacity, once start() measured)."""

    def __init__(self, videos: dict, choice: EncoderChoice, capacity=None) -> None:
        super().__init__(videos)
        self.choice = choice
        self.capacity = capacity


def canonical(vcodec: str) -> str:
    return ALIASES.get(vcodec, vcodec)


def in_build(vcodec: str) -> bool:
    """Whether this machine's PyAV has the encoder (hardware ones are listed without hardware)."""
    try:
        av.codec.Codec(ENCODERS[vcodec], "w")
    except (ValueError, av.FFmpegError):
        return False
    return True


def check_usable(vcodec: str) -> str:
    """`vcodec` (aliases resolved) if shmpipe knows it and this PyAV has it, else ConfigError."""
    vcodec = canonical(vcodec)
    if vcodec != AUTO and vcodec not in ENCODERS:
        raise ConfigError(f"vcodec {vcodec!r} is unknown; expected one of {list(ACCEPTED)}")
    if vcodec != AUTO and not in_build(vcodec):
        here = [name for name in ENCODERS if in_build(name)]
        raise ConfigError(
            f"vcodec {vcodec!r}: encoder {ENCODERS[vcodec]!r} is not in this machine's PyAV "
            f"(FFmpeg {av.ffmpeg_version_info}) build; available here: {here} (hardware "
            f"encoders also need their device: vcodec='auto' takes the first that opens)"
        )
    return vcodec


def choose(vcodec: str, unusable: Callable[[str], str | None]) -> EncoderChoice:
    """The encoder to open: `vcodec` itself, or for "auto" the first of AUTO_ORDER for which
    `unusable(name)` (why it cannot open or encode here, None if it can) returns None."""
    vcodec = check_usable(vcodec)
    if vcodec != AUTO:
        return EncoderChoice(vcodec)
    notes = []
    for name in AUTO_ORDER:
        reason = unusable(name) if in_build(name) else "not in this PyAV build"
        if reason is None:
            return EncoderChoice(name, notes)
        notes.append(f"{name}: {reason}")
    raise ConfigError("vcodec 'auto': no encoder opens and encodes here: " + "; ".join(notes))


def input_pix_fmt(vcodec: str, pix_fmt: str) -> str:
    """The pixel format the encoder is fed: `pix_fmt`, or nv12 for yuv420p where the encoder
    takes only that (Intel QSV): the same 4:2:0 samples, decoded as yuv420p again."""
    formats = [f.name for f in av.codec.Codec(ENCODERS[vcodec], "w").video_formats or []]
    if not formats or pix_fmt in formats:
        return pix_fmt
    if pix_fmt == "yuv420p" and "nv12" in formats:
        return "nv12"
    raise ConfigError(f"pix_fmt {pix_fmt!r} is not one {vcodec!r} encodes; it takes {formats}")


def codec_options(vcodec: str, crf: float | None, g: int | None, preset: int | str | None,
                  fast_decode: int, extra: dict, threads: int) -> dict[str, str]:  # fmt: skip
    """LeRobot's FFmpeg options for `vcodec` (and bf=0 for H.264/HEVC, see NO_B_FRAMES).
    `threads` is per encoder (SVT-AV1's lp; hardware encoders take none). `extra` never replaces
    a mapped option (as in LeRobot), except that its svtav1-params are appended to ours, so
    that they win where both set one (e.g. "lookahead=-1" restores SVT-AV1's own look-ahead)."""
    if canonical(vcodec) not in ENCODERS:
        check_usable(vcodec)  # an unknown name; "auto" passes, but has no options of its own
        raise ConfigError("vcodec 'auto' has no codec options until start() has chosen one")
    encoder = ENCODERS[canonical(vcodec)]
    opts: dict[str, object] = {"g": g}
    if encoder == "libsvtav1":
        svt = f"fast-decode={max(0, min(2, fast_decode))}:lp={threads}"
        if g is not None and g <= SHORT_GOP:
            svt += f":{SHORT_GOP_SVT_PARAMS}"
        opts |= {"crf": crf, "preset": preset, SVT_PARAMS: svt}
        if extra.get(SVT_PARAMS):
            opts[SVT_PARAMS] = f"{svt}:{extra[SVT_PARAMS]}"
    elif encoder in ("libx264", "libx265"):
        opts |= {"crf": crf, "preset": _x26x_preset(vcodec, preset), "threads": threads}
        opts["tune"] = "fastdecode" if fast_decode else None
    elif encoder == "libaom-av1":
        opts |= {"crf": crf, "preset": preset, "threads": threads, "row-mt": 1}
    elif encoder.endswith("_videotoolbox"):
        opts["q:v"] = None if crf is None else max(1, min(100, 100 - crf * 2))
    elif encoder.endswith("_nvenc"):
        opts |= {"rc": 0, "qp": crf, "preset": preset}  # rc 0: constant QP
    elif encoder == "h264_vaapi":
        opts["qp"] = crf
    elif encoder.endswith("_qsv"):
        opts |= {"global_quality": crf, "preset": preset}
    else:
        opts |= {"crf": crf, "preset": preset}
    if encoder.startswith(NO_B_FRAMES):
        opts["bf"] = 0
    mapped = {key: str(value) for key, value in opts.items() if value is not None}
    return mapped | {k: str(v) for k, v in extra.items() if k not in mapped}


def _x26x_preset(vcodec: str, preset: int | str | None) -> str | None:
    """x264/x265 presets by name; a number 0..9 is the name at that place (as x264 reads it)."""
    if preset is None or preset in X26X_PRESETS:
        return preset
    if isinstance(preset, int) and 0 <= preset < len(X26X_PRESETS):
        return X26X_PRESETS[preset]
    raise ConfigError(f"preset {preset!r} is not a {vcodec} preset; expected one of "
                      f"{list(X26X_PRESETS)} or 0..9 (None: medium)")  # fmt: skip
