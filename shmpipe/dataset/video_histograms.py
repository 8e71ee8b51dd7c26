"""Image histograms of committed episodes that have none, from their videos (decoded once).

shmpipe keeps exact image stats as per-channel histograms of every episode's downsampled frames,
counted while recording. A dataset LeRobot wrote (or episodes LeRobot's writer appended) has no
such files; the raw frames are gone, so their histograms are counted from the decoded videos:
exact stats of what the dataset holds. Cost: one sequential decode of every video file of those
episodes, once (smooth AV1 at 96x128 or 480x640 decodes and is counted at ~1,500 frames/s on the
2-core machine here; noisy camera content slower); the histograms are then saved beside the
others and never decoded again. Memory: one open decoder per camera.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import av
import numpy as np

from shmpipe import depth
from shmpipe.dataset import layout
from shmpipe.dataset.files import write_atomically
from shmpipe.dataset.reader import read_episodes, video_prefix
from shmpipe.dataset.untrusted import DamagedDatasetError, require_file
from shmpipe.stats.images import accumulate_histograms, downsample


def missing_histograms(root: Path, episodes: int) -> list[int]:
    """The committed episodes (0..episodes-1) whose histogram file is absent."""
    return [e for e in range(episodes) if not layout.histograms_path(root, e).is_file()]


def write_from_videos(
    root: Path, episodes: int, missing: list[int], shapes: Mapping[str, tuple[int, ...]]
) -> None:
    """Count and save the histograms of the `missing` episodes (of 0..episodes-1) from their
    videos, found through meta/episodes. shapes: camera -> histogram shape ((3, 256) RGB,
    (1, 4096) depth). DamagedDatasetError naming the file if a video lacks an episode's frames."""
    table = read_episodes(root, episodes, ["length", *video_columns(shapes)])
    with DecodedHistograms(root, shapes) as decoded:
        for row in _rows(table, set(missing)):
            histograms = decoded.of(row)
            path = layout.histograms_path(root, row["episode_index"])
            write_atomically(path, lambda f, h=histograms: np.savez(f, **h))


def video_columns(cameras) -> list[str]:
    """The meta/episodes columns that say where each camera's frames of an episode are."""
    keys = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
    return [video_prefix(camera) + key for camera in cameras for key in keys]


class DecodedHistograms:
    """Each camera's histograms of episodes given in episode order, from the decoded videos:
    one decoder per camera, each video file decoded once front to back."""

    def __init__(self, root: Path, shapes: Mapping[str, tuple[int, ...]]) -> None:
        self.spans = {camera: _SpanReader(root, camera, shape) for camera, shape in shapes.items()}

    def of(self, row: Mapping) -> dict[str, np.ndarray]:
        """camera -> histogram of the episode of a meta/episodes row (with `episode_index`,
        `length` and video_columns)."""
        return {camera: reader.histogram(row) for camera, reader in self.spans.items()}

    def close(self) -> None:
        for reader in self.spans.values():
            reader.close()

    def __enter__(self) -> DecodedHistograms:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rows(table, wanted: set[int]) -> Iterator[dict]:
    """The meta/episodes rows of the wanted episodes, in episode order, a batch at a time."""
    for batch in table.to_batches(max_chunksize=1024):
        for row in batch.to_pylist():
            if row["episode_index"] in wanted:
                yield row


class _SpanReader:
    """One camera's decoder, moved forward episode by episode: LeRobot's files hold
    consecutive episodes in time order, so each file is decoded once, front to back."""

    def __init__(self, root: Path, camera: str, shape: tuple[int, ...]) -> None:
        self.root, self.camera, self.shape = root, camera, shape
        self.path: Path | None = None
        self.container = None
        self.frames: Iterator = iter(())
        self.pending = None  # the first frame past the previous episode
        self.last_end = 0.0

    def histogram(self, row: Mapping) -> np.ndarray:
        prefix = f"videos/{self.camera}/"
        path = self.root / layout.VIDEO_PATH.format(
            video_key=self.camera,
            chunk_index=row[prefix + "chunk_index"],
            file_index=row[prefix + "file_index"],
        )
        start, end = row[prefix + "from_timestamp"], row[prefix + "to_timestamp"]
        half_frame = 0.5 * (end - start) / max(row["length"], 1)
        if path != self.path or start < self.last_end - half_frame:
            self._open(path)
        hist, counted = np.zeros(self.shape, np.int64), 0
        name = path.relative_to(self.root).as_posix()
        try:
            while (frame := self._next_frame()) is not None:
                if frame.time >= end - half_frame:
                    self.pending = frame
                    break
                if frame.time >= start - half_frame:
                    self._count(frame, hist)
                    counted += 1
        except av.error.FFmpegError as error:
            raise DamagedDatasetError(f"{name}: cannot be decoded: {error}") from None
        self.last_end = end
        if counted != row["length"]:
            raise DamagedDatasetError(
                f"{name}: {counted} frames of episode {row['episode_index']} in "
                f"[{start:.4f}, {end:.4f}) s, meta/episodes says {row['length']}"
            )
        return hist

    def _next_frame(self) -> av.VideoFrame | None:
        """The frame held back from the previous episode, else the next decoded; None at the end."""
        if self.pending is not None:
            frame, self.pending = self.pending, None
            return frame
        return next(self.frames, None)

    def _count(self, frame: av.VideoFrame, hist: np.ndarray) -> None:
        if self.shape[1] == depth.BINS:  # 12-bit codes, as the stats worker counts them
            codes = downsample(frame.to_ndarray(format=depth.PIX_FMT)[..., None])[..., 0]
            hist[0] += np.bincount(codes.ravel(), minlength=depth.BINS)[: depth.BINS]
        else:
            accumulate_histograms(frame.to_ndarray(format="rgb24"), hist)

    def _open(self, path: Path) -> None:
        self.close()
        name = path.relative_to(self.root).as_posix()
        require_file(path, name)
        try:
            self.container = av.open(str(path))
            self.frames = self.container.decode(self.container.streams.video[0])
        except (av.error.FFmpegError, IndexError) as error:
            raise DamagedDatasetError(f"{name}: unreadable video: {error}") from None
        self.path, self.pending, self.last_end = path, None, 0.0

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None
