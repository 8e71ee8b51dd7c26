"""Camera sources that write each frame straight into a buffer the caller gives (a ring slot).

`open_source(spec, fps)` opens one: "opencv:<index, /dev/videoN or video file>[:WxH][:FOURCC]"
(a camera's size and pixel format, e.g. "opencv:0:640x480:MJPG"), "file:<video>" (PyAV, looping,
paced at fps) or "synthetic[:HxW]".
"""

from __future__ import annotations

import re
from pathlib import Path

from shmpipe.dataset.info import check_fps
from shmpipe.errors import ConfigError, SourceError
from shmpipe.tools.sources.base import Capture, FrameSource

__all__ = ["Capture", "FrameSource", "SourceError", "open_source"]

SPEC_FORMS = (
    '"opencv:<camera index>", "opencv:/dev/videoN" (either with an optional ":<width>x<height>" '
    'and ":<pixel format>", e.g. "opencv:0:640x480:MJPG"), "opencv:<video file>", '
    '"file:<video file>", '
    '"synthetic" or "synthetic:<height>x<width>" (e.g. "synthetic:480x640")'
)


def open_source(spec: str, fps: int, size: tuple[int, int] | None = None) -> FrameSource:
    """Open the source `spec` for recording at `fps`; `size` is (height, width) to ask the
    camera for, or to make (synthetic, file); None: the device's or file's own (synthetic
    480x640). A bad spec is a ConfigError; a source that cannot deliver is a SourceError."""
    if not isinstance(spec, str):
        raise ConfigError(f"camera source {spec!r}: expected a string, one of {SPEC_FORMS}")
    fps = check_fps(fps)
    size = _check_size(spec, size)
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        from shmpipe.tools.sources.synthetic import SyntheticSource, synthetic_shape

        return SyntheticSource(spec, synthetic_shape(spec, arg, SPEC_FORMS, size))
    if kind == "file" and arg:
        if not Path(arg).is_file():
            raise SourceError(f"{spec}: no such video file {arg!r}")
        from shmpipe.tools.sources.file import FileSource

        return FileSource(spec, arg, fps, size)
    if kind == "opencv" and arg:
        from shmpipe.tools.sources.opencv import OpenCVSource

        device, asked, fourcc = opencv_options(arg)
        if asked is not None and size is not None and asked != size:
            raise ConfigError(f"{spec}: the spec asks for {asked[1]}x{asked[0]} but size is {size}")
        if device:
            return OpenCVSource(spec, int(device) if device.isdigit() else device, fps,
                                size or asked, fourcc)  # fmt: skip
    raise ConfigError(f"camera source {spec!r}: expected one of {SPEC_FORMS}")


def opencv_options(arg: str) -> tuple[str, tuple[int, int] | None, str | None]:
    """"0:640x480:MJPG" -> ("0", (480, 640), "MJPG"): the device, then optionally a size as
    cameras list it (width x height; returned as (height, width)) and a four-character pixel
    format, in either order, split off the end (a path may hold colons)."""
    device, size, fourcc = arg, None, None
    while ":" in device:
        head, _, last = device.rpartition(":")
        if size is None and (match := re.fullmatch(r"([1-9]\d{0,4})x([1-9]\d{0,4})", last)):
            size = int(match[2]), int(match[1])
        elif fourcc is None and re.fullmatch(r"[A-Za-z0-9]{4}", last):
            fourcc = last.upper()
        else:
            break
        device = head
    return device, size, fourcc


def _check_size(spec: str, size: object) -> tuple[int, int] | None:
    if size is None:
        return None
    if (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size)
    ):
        return int(size[0]), int(size[1])
    raise ConfigError(f"{spec}: size must be (height, width) in pixels or None, got {size!r}")
