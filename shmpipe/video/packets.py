"""Copying a video's packets without decoding: the one loop behind joining segments, packing
and reading frame times back.

Every packet of these codecs (AV1, H.264 and HEVC without B-frames) holds one frame. The demuxer
ends each stream with an empty flush packet (no data, no timestamps); it is skipped here, once.
"""

from __future__ import annotations

from collections.abc import Iterator

import av


def frame_packets(container: av.container.InputContainer, stream) -> Iterator[av.Packet]:
    """The packets of `stream` that hold a frame, in file order."""
    for packet in container.demux(stream):
        if packet.size and packet.pts is not None:
            yield packet


def mux_copy(out: av.container.OutputContainer, target, packet: av.Packet, pts: int,
             dts: int | None = None, duration: int | None = None) -> None:  # fmt: skip
    """Write `packet` unchanged but for its timestamps into `target` (dts None: pts; a
    `duration` replaces the packet's, which PyAV 15's fragments leave at 0: the muxer then ends
    the track at the last frame's start and an edit list hides that frame from decoders)."""
    packet.pts, packet.dts = pts, pts if dts is None else dts
    if duration is not None:
        packet.duration = duration
    packet.stream = target
    out.mux(packet)
