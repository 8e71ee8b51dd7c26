"""Video encoding settings with LeRobot's names and defaults.

`VideoEncoderConfig` mirrors LeRobot's video options so a dataset recorded here is encoded as
LeRobot would encode it; shmpipe.video.codecs maps them to each encoder's FFmpeg options.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from shmpipe.video import codecs

LIBSVTAV1_DEFAULT_PRESET = 12  # LeRobot's


@dataclass(frozen=True)
class VideoEncoderConfig:
    """Video encoding settings, LeRobot's names and defaults (AV1 via SVT-AV1, keyframe every 2).

    `vcodec` is any name LeRobot accepts (shmpipe.video.codecs.ACCEPTED), checked at start(). "auto"
    becomes the first encoder that opens and encodes here (Pipeline.encoder is then resolved to
    it, so info.json names that encoder). `preset` None is the codec's default (LeRobot's
    12 for libsvtav1); x264/x265 take names ("veryfast") or 0..9."""

    vcodec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    g: int = 2
    crf: int = 30
    preset: int | str | None = None
    fast_decode: int = 0
    extra_options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vcodec", codecs.canonical(self.vcodec))
        if self.preset is None and self.vcodec == "libsvtav1":
            object.__setattr__(self, "preset", LIBSVTAV1_DEFAULT_PRESET)

    def codec_options(self, threads: int) -> dict[str, str]:
        """FFmpeg options of the (resolved) codec; `threads` per encoder (SVT-AV1's lp)."""
        return codecs.codec_options(self.vcodec, self.crf, self.g, self.preset,
                                    self.fast_decode, self.extra_options, threads)  # fmt: skip

    def resolved(self, vcodec: str) -> VideoEncoderConfig:
        """These settings for `vcodec` (what start() chose for "auto")."""
        return self if vcodec == self.vcodec else replace(self, vcodec=vcodec)

    def as_dict(self) -> dict:
        """The settings as info.json keeps them."""
        return {
            "vcodec": self.vcodec,
            "pix_fmt": self.pix_fmt,
            "g": self.g,
            "crf": self.crf,
            "preset": self.preset,
            "fast_decode": self.fast_decode,
            "extra_options": dict(self.extra_options),
        }
