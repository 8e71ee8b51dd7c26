"""The frames a LeRobot video file really holds, and which of an episode's frames are off.

Every packet of a video stream of these codecs (AV1, H.264, HEVC) is one frame, so demuxing gives
each frame's presentation time without decoding pixels; sorting by pts undoes B-frame reordering.
`decode=True` decodes every frame instead: slower, but it also proves the bitstream decodes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from shmpipe.dataset.reader import read_ahead, video_prefix
from shmpipe.video.packets import frame_packets

TOLERANCE_S = 1e-4  # LeRobot's tolerance between a frame's time and i / fps
READ_AHEAD = 4  # video files read ahead


@dataclass(frozen=True)
class VideoFrames:
    """The frames read from one video file: their times, and why reading stopped early if it did."""

    times: np.ndarray  # seconds, ascending
    error: str | None = None


def frame_times(path: Path, decode: bool = False) -> np.ndarray:
    """Presentation times in seconds, ascending, of every frame of the file's first video stream;
    raises av.error.FFmpegError if the file cannot be read to its end."""
    video = read_video(path, decode)
    if video.error:
        raise av.error.InvalidDataError(1094995529, video.error)
    return video.times


def read_video(path: Path, decode: bool = False) -> VideoFrames:
    """The frames of the file's first video stream, as far as they can be read."""
    pts: list[int | None] = []
    time_base, error = Fraction(1), None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            time_base = Fraction(stream.time_base)
            if decode:
                pts.extend(frame.pts for frame in container.decode(stream))
            else:
                pts.extend(packet.pts for packet in frame_packets(container, stream))
    except (av.error.FFmpegError, IndexError, OSError) as failure:
        error = f"the video cannot be read past {len(pts)} frames: {failure}"
    ticks = np.sort(np.array([p for p in pts if p is not None], dtype=np.int64))
    return VideoFrames(ticks * (time_base.numerator / time_base.denominator), error)


def read_each(paths: Sequence[Path], decode: bool = False) -> Iterator[VideoFrames]:
    """read_video of each file, in order, on every core, at most READ_AHEAD files ahead: the
    frame times of the whole dataset are never held at once."""
    for _, video in read_ahead(paths, lambda path: read_video(path, decode), READ_AHEAD):
        yield video.result()


def episode_problems(
    times: np.ndarray, start: float, end: float, length: int, fps: float
) -> list[str]:
    """What is wrong with the frames of one episode: those with start <= time < end must be
    exactly `length` frames at start + i / fps (within TOLERANCE_S)."""
    low, high = np.searchsorted(times, [start - TOLERANCE_S, end - TOLERANCE_S])
    found = times[low:high]
    # Never more expected times than found + 1: `length` is read from metadata (it may claim
    # billions), and the first missing frame is among the first len(found) + 1.
    expected = start + np.arange(min(length, len(found) + 1)) / fps
    if len(found) != length:
        message = f"{len(found)} frames in [{start:.4f}, {end:.4f}) s, expected {length}"
        missing, extra = _unmatched(expected, found), _extra(found, start, length, fps)
        if len(missing):
            message += f"; first missing at {missing[0]:.4f} s"
        if len(extra):
            message += f"; first extra at {extra[0]:.4f} s"
        return [message]
    late = np.flatnonzero(np.abs(found - expected) > TOLERANCE_S)
    if len(late):
        i = late[0]
        return [
            f"{len(late)} frames off their time; frame {i} is at {found[i]:.6f} s, "
            f"expected {expected[i]:.6f} s"
        ]
    return []


def file_problems(video: VideoFrames, held: list[tuple[dict, str]], fps: float
                  ) -> list[tuple[str, int | None, str]]:  # fmt: skip
    """The problems of the episodes one video file holds (`held`: each one's meta/episodes row
    and camera), as (message, episode index, camera). A read error is added to the first
    episode whose frames it may explain, else it is a problem of its own (episode None)."""
    out, unexplained = [], video.error is not None  # a read error not yet reported
    for e, camera in held:
        key = video_prefix(camera)
        start, end = e[key + "from_timestamp"], e[key + "to_timestamp"]
        found = episode_problems(video.times, start, end, e["length"], fps)
        if found and video.error:  # the frames this episode misses may be behind the error
            found[0] += f"; {video.error}"
            unexplained = False
        out += [(message, e["episode_index"], camera) for message in found]
    if unexplained:
        out.append((video.error, None, held[0][1]))
    return out


def _unmatched(times: np.ndarray, others: np.ndarray) -> np.ndarray:
    """The times with no time of `others` within TOLERANCE_S (both ascending)."""
    padded = np.concatenate([[-np.inf], others, [np.inf]])
    after = np.searchsorted(padded, times)  # padded[after - 1] < time <= padded[after]
    nearest = np.minimum(padded[after] - times, times - padded[after - 1])
    return times[nearest > TOLERANCE_S]


def _extra(found: np.ndarray, start: float, length: int, fps: float) -> np.ndarray:
    """The times of `found` that are no frame start + i / fps, 0 <= i < length (within
    TOLERANCE_S), computed without building the `length` expected times."""
    i = np.rint((found - start) * fps)
    off = np.abs(found - (start + i / fps)) > TOLERANCE_S
    return found[off | (i < 0) | (i >= length)]
