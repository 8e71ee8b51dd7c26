"""Where files go under a recording's root, following LeRobot v3.0's path templates."""

from __future__ import annotations

from pathlib import Path

CHUNKS_SIZE = 1000  # files per chunk folder, as LeRobot
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"


def chunk_and_file(number: int) -> tuple[int, int]:
    """The (chunk, file) indices of the `number`-th file of its kind."""
    return divmod(number, CHUNKS_SIZE)


def data_path(root: Path, number: int) -> Path:
    chunk, file = chunk_and_file(number)
    return root / DATA_PATH.format(chunk_index=chunk, file_index=file)


def video_path(root: Path, camera: str, number: int) -> Path:
    chunk, file = chunk_and_file(number)
    return root / VIDEO_PATH.format(video_key=camera, chunk_index=chunk, file_index=file)
