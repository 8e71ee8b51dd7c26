"""What an encoder needs to open one camera's video, as one value the recorder plans and sends.

It travels to an encoder worker inside shmpipe.messages.EncoderSpec, so it is a msgspec Struct;
it lives here because the episode writer and the probe are what read it.
"""

from __future__ import annotations

import msgspec


class VideoSettings(msgspec.Struct, frozen=True):
    """Everything an encoder needs to open one camera's video (see shmpipe.video.episode_writer)."""

    fps: int
    width: int
    height: int
    vcodec: str
    pix_fmt: str
    codec_options: dict[str, str]
    priority: str | int = 10  # shmpipe.system.priority.EncoderPriority for the codec's threads
    scope: str = "process"  # whose threads to move: the whole "process" or only the "thread"
    input_format: str = "rgb24"  # what a ring slot holds: "rgb24", or "gray12le" for depth (mm)
