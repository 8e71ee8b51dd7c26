"""LeRobot's encoder settings (`vcodec`, `rgb_encoder`, `depth_encoder`) as shmpipe's, and which
settings a resume appends with.

LeRobot 0.5 and later pass `rgb_encoder` on every resume, its defaults when the user gave no
flag, so "not given" and "LeRobot's defaults" cannot be told apart. A resume therefore takes the
dataset's own settings for every field the caller left at LeRobot's default, and refuses only a
field the caller set to something else than the dataset has, naming it. LeRobot's writer records
`video.g`, `video.crf`, `video.preset` ... in each camera's info since 0.5; before that only the
codec and pixel format (the rest were LeRobot's defaults).

Depth is stored as LeRobot's default DepthEncoderConfig (lossless 12-bit HEVC of log-quantized
millimetres, shmpipe.depth): a `depth_encoder` that asks for anything else is refused,
naming the field, when there is a depth camera; without one it does not apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from shmpipe import depth
from shmpipe.errors import ConfigError
from shmpipe.video import codecs
from shmpipe.video.encoder_config import VideoEncoderConfig

FIELDS = [f.name for f in dataclasses.fields(VideoEncoderConfig) if f.init]
# what a camera's info names each field (LeRobot's get_video_info; vcodec is the stream's codec)
INFO_KEYS = {"vcodec": "video.codec", **{f: f"video.{f}" for f in FIELDS if f != "vcodec"}}
DEPTH_DEFAULTS = {
    "vcodec": depth.VCODEC, "pix_fmt": depth.PIX_FMT, "g": 2, "crf": 30, "preset": None,
    "fast_decode": 0, "extra_options": depth.EXTRA_OPTIONS, "depth_min": depth.DEPTH_MIN,
    "depth_max": depth.DEPTH_MAX, "shift": depth.SHIFT, "use_log": depth.USE_LOG,
}  # fmt: skip


def encoder_config(vcodec: str | None, rgb_encoder: object | None) -> VideoEncoderConfig | None:
    """A VideoEncoderConfig from LeRobot's `vcodec` (LeRobot 0.4's create argument) and/or its
    `rgb_encoder` (an RGBEncoderConfig, read by attribute: vcodec, pix_fmt, g, crf, preset,
    fast_decode, extra_options; None fields keep shmpipe's LeRobot defaults). None if neither."""
    if vcodec is None and rgb_encoder is None:
        return None
    settings = {}
    for name in FIELDS:
        value = getattr(rgb_encoder, name, None)
        if value is not None:
            settings[name] = dict(value) if name == "extra_options" else value
    if "vcodec" in settings:
        settings["vcodec"] = codecs.canonical(settings["vcodec"])
    if vcodec is not None:
        vcodec = codecs.canonical(vcodec)
        if settings.setdefault("vcodec", vcodec) != vcodec:
            raise ConfigError(f"vcodec={vcodec!r} but rgb_encoder.vcodec={settings['vcodec']!r}; "
                              "give one of them")  # fmt: skip
    return VideoEncoderConfig(**settings)


def stored_encoder(info: Mapping) -> VideoEncoderConfig | None:
    """The encoder settings a dataset was recorded with: a shmpipe dataset's, else those its
    first RGB camera's `info` names (LeRobot's writer: codec and pixel format, and since 0.5 g,
    crf, preset, fast_decode, extra_options; LeRobot's defaults for what it lacks). None if it
    has no RGB camera."""
    stored = (info.get("shmpipe") or {}).get("video_encoder")
    if isinstance(stored, Mapping):
        return VideoEncoderConfig(**{k: v for k, v in stored.items() if k in FIELDS})
    videos = [f.get("info") or {} for f in info.get("features", {}).values()
              if isinstance(f, Mapping) and f.get("dtype") == "video"
              and not _is_depth(f.get("info") or {})]  # fmt: skip
    if not videos or "video.codec" not in videos[0]:
        return None
    settings = {name: videos[0][key] for name, key in INFO_KEYS.items()
                if videos[0].get(key) is not None}  # fmt: skip
    settings["vcodec"] = codecs.canonical(settings["vcodec"])
    settings["extra_options"] = dict(settings.get("extra_options") or {})
    return VideoEncoderConfig(**settings)


def resume_encoder(vcodec: str | None, rgb_encoder: object | None,
                   info: Mapping) -> VideoEncoderConfig | None:  # fmt: skip
    """The settings a resume appends with: the dataset's own, unless the caller set a field to
    something other than LeRobot's default for it and the dataset has another value (then a
    ConfigError naming each such field)."""
    given, stored = encoder_config(vcodec, rgb_encoder), stored_encoder(info)
    if given is None or stored is None:
        return stored or given
    lerobot_default = VideoEncoderConfig(vcodec=given.vcodec).as_dict()  # preset: per codec
    lerobot_default["vcodec"] = VideoEncoderConfig().vcodec
    asked, have = given.as_dict(), stored.as_dict()
    conflicts = [f"{name}={asked[name]!r} (the dataset has {have[name]!r})" for name in asked
                 if asked[name] != lerobot_default[name] and asked[name] != have[name]]  # fmt: skip
    if conflicts:
        raise ConfigError(
            "resume: encoder settings other than the dataset's: " + ", ".join(conflicts)
            + "; leave them out to append with the dataset's own, or record a new dataset"
        )
    return stored


def check_depth_encoder(depth_encoder: object | None, has_depth_camera: bool) -> None:
    """Refuse a `depth_encoder` (LeRobot's DepthEncoderConfig, read by attribute) that asks for
    other depth settings than those shmpipe stores depth with, naming each field."""
    if depth_encoder is None or not has_depth_camera:
        return
    other = []
    for name, expected in DEPTH_DEFAULTS.items():
        value = getattr(depth_encoder, name, expected)
        if name == "vcodec":
            value = codecs.canonical(value)
        if value != expected and not (name == "extra_options" and dict(value) == expected):
            other.append(f"{name}={value!r} (shmpipe: {expected!r})")
    if other:
        raise ConfigError(
            "depth_encoder: shmpipe stores depth as LeRobot's default DepthEncoderConfig "
            "(lossless 12-bit HEVC); not supported: " + ", ".join(other)
        )


def _is_depth(video_info: Mapping) -> bool:
    return bool(video_info.get("is_depth_map") or video_info.get("video.is_depth_map"))
