"""Checks of a recorded episode: its files, and every accepted frame in every video and row."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq

from tests.helpers.frames import value_of
from tests.helpers.media import decode_video, psnr

FPS = 30


def episode_files(root) -> list[str]:
    """Files of recorded episodes under `root` (videos and data), relative, sorted."""
    return sorted(
        p.relative_to(root).as_posix()
        for folder in ("videos", "data")
        for p in (root / folder).rglob("*")
        if p.is_file()
    )


def data_rows(path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def assert_marked_episode(
    result, camera: str, frames: list[np.ndarray], n: int, psnr_every: int = 1
) -> None:
    """The camera's video is frames[i % len(frames)] (marked_frames) for i < n, in order, at
    i / 30 s, as are the rows."""
    decoded, times = decode_video(result.videos[camera][0])
    assert len(decoded) == n, f"{camera}: {len(decoded)} of {n} frames in the video"
    assert pq.ParquetFile(result.data).metadata.num_rows == n
    np.testing.assert_allclose(times, np.arange(n) / 30, atol=1e-4)
    k = len(frames)
    marks = np.array([f[:32, :32].mean() for f in decoded])
    expected = np.array([value_of(i % k) for i in range(n)])
    wrong = np.flatnonzero(np.abs(marks - expected) > 8)
    assert wrong.size == 0, f"{camera}: frames {wrong[:10].tolist()} out of place"
    worst = min(psnr(decoded[i], frames[i % k]) for i in range(0, n, psnr_every))
    assert worst >= 30, f"{camera}: worst PSNR {worst:.1f} dB"


def assert_flat_episode(result, values: list[int]) -> None:
    """Every camera's video holds exactly the frames `values` (flat frames), as do the rows."""
    assert result.num_frames == len(values), f"{result.num_frames} rows, {len(values)} accepted"
    assert data_rows(result.data) == len(values)
    for name, (path, _, _) in result.videos.items():
        decoded, times = decode_video(path)
        assert len(decoded) == len(values), f"{name}: {len(decoded)} frames, {len(values)} rows"
        np.testing.assert_allclose(times, np.arange(len(values)) / FPS, atol=1e-4)
        means = np.array([f.mean() for f in decoded])
        wrong = np.flatnonzero(np.abs(means - np.array(values)) > 6)
        assert wrong.size == 0, (
            f"{name}: frames {wrong[:10].tolist()} hold another frame's image "
            f"(got {means[wrong[:10]].round().tolist()}, expected "
            f"{[values[i] for i in wrong[:10]]})"
        )


def child_result(info: dict) -> SimpleNamespace:
    """What a child printed about its finished episode, shaped like an EpisodeResult."""
    return SimpleNamespace(
        num_frames=info["num_frames"],
        data=info["data"],
        videos={name: (path, 0.0, 0.0) for name, path in info["videos"].items()},
    )
