"""The seed's "before" pipeline, rebuilt from its description as the baseline to beat.

As in LeRobot, add_frame() queues each image, by reference, to a pool of threads that write PNG
files while recording goes on. save_episode() waits for the pending writes, reads a sample of
the PNGs back for image stats, reads all of them again to encode AV1 (same settings as shmpipe),
deletes them and writes the numeric rows to parquet. Each step is timed.
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.codec import open_video
from shmpipe.video.encoder_config import VideoEncoderConfig

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
PNG_COMPRESS_LEVEL = 1  # LeRobot's image writer default
PNG_THREADS_PER_CAMERA = 4  # LeRobot's advice for its AsyncImageWriter


def downsample(image: np.ndarray, target: int = 150, threshold: int = 300) -> np.ndarray:
    """Stride an HxWxC image down to about `target` px on its long side, as LeRobot does."""
    longest = max(image.shape[:2])
    if longest < threshold:
        return image
    k = int(longest / target)
    return image[::k, ::k]


def sample_indices(n: int, low: int = 100, high: int = 10_000, power: float = 0.75) -> np.ndarray:
    """Which frames the stats step reads back: about n**0.75 of them, evenly spaced."""
    count = min(n, max(min(low, n), min(int(n**power), high)))
    return np.round(np.linspace(0, n - 1, count)).astype(int)


def feature_stats(values: np.ndarray, axis: tuple[int, ...]) -> dict[str, list]:
    """min/max/mean/std/quantiles over `axis`, keeping the channel axis (as nested lists)."""
    values = values.astype(np.float64)
    stats = {
        "min": values.min(axis=axis),
        "max": values.max(axis=axis),
        "mean": values.mean(axis=axis),
        "std": values.std(axis=axis),
        "count": np.array([values.shape[0]]),
    }
    for q in QUANTILES:
        stats[f"q{round(q * 100):02d}"] = np.quantile(values, q, axis=axis)
    return {k: v.tolist() for k, v in stats.items()}


def _write_png(image: np.ndarray, path: Path) -> None:
    """One writer thread's job: LeRobot's write_image (zlib releases the GIL while it works)."""
    from PIL import Image

    Image.fromarray(image).save(path, compress_level=PNG_COMPRESS_LEVEL)


class BeforePipeline:
    """PNG files written by a thread pool while recording; read back and encoded at save.

    Like LeRobot's image writer, add_frame() queues the caller's array without copying it, so
    the caller must not reuse an image's buffer before save_episode(). Call close() at the end.
    """

    def __init__(
        self,
        root: Path,
        fps: int,
        cameras: dict[str, tuple[int, int, int]],
        features: dict[str, tuple[int, ...]],
        encoder: VideoEncoderConfig | None = None,
    ):
        self.root, self.fps, self.cameras, self.features = Path(root), fps, cameras, features
        self.encoder = encoder or VideoEncoderConfig()
        self.episode_index = 0
        self._writer = ThreadPoolExecutor(
            max_workers=PNG_THREADS_PER_CAMERA * len(cameras), thread_name_prefix="png-writer"
        )
        self._writes: list[Future] = []
        self._pngs: dict[str, list[Path]] = {cam: [] for cam in cameras}
        self._rows: dict[str, list[np.ndarray]] = {name: [] for name in features}
        self._tasks: list[str] = []

    def add_frame(self, frame: dict[str, np.ndarray], task: str) -> None:
        """Queue every image for a PNG write and keep the numeric values."""
        frame_index = len(self._tasks)
        for cam in self.cameras:
            folder = self._image_folder(cam)
            if frame_index == 0:
                folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"frame_{frame_index:06d}.png"
            self._writes.append(self._writer.submit(_write_png, frame[cam], path))
            self._pngs[cam].append(path)
        for name in self.features:
            self._rows[name].append(np.asarray(frame[name], dtype=np.float32))
        self._tasks.append(task)

    def save_episode(self) -> dict:
        """Wait for the PNGs, read back, encode, delete, save; returns paths, stats, timings."""
        timings: dict[str, float] = {}
        t_start = time.perf_counter()
        pending = sum(not w.done() for w in self._writes)
        self._timed(timings, "png_write_wait", self._wait_for_writes)
        pngs = self._pngs
        stats = self._timed(timings, "stats", self._compute_stats, pngs)
        videos, encode_s = self._timed(timings, "encode", self._encode_and_delete, pngs)
        data = self._timed(timings, "data", self._write_data, stats)
        timings["total"] = time.perf_counter() - t_start
        num_frames = len(self._tasks)
        self._pngs = {cam: [] for cam in self.cameras}
        self._rows = {name: [] for name in self.features}
        self._tasks = []
        self.episode_index += 1
        return {
            "num_frames": num_frames,
            "videos": videos,
            "encode_s_per_camera": encode_s,
            "data": str(data),
            "timings": timings,
            "png_writes_pending_at_save": pending,
        }

    def close(self) -> None:
        """Stop the writer threads (after the writes already queued)."""
        self._writer.shutdown(wait=True)

    def _image_folder(self, cam: str) -> Path:
        return self.root / "images" / cam / f"episode_{self.episode_index:06d}"

    @staticmethod
    def _timed(timings: dict[str, float], name: str, step, *args):
        t0 = time.perf_counter()
        result = step(*args)
        timings[name] = time.perf_counter() - t0
        return result

    def _wait_for_writes(self) -> None:
        """Block until every queued PNG is on disk, as LeRobot's save_episode() does first."""
        writes, self._writes = self._writes, []
        for write in writes:
            write.result()  # re-raises a failed write

    def _compute_stats(self, pngs: dict[str, list[Path]]) -> dict[str, dict]:
        from PIL import Image

        stats = {}
        for cam, paths in pngs.items():
            picked = [paths[i] for i in sample_indices(len(paths))]
            images = np.stack([downsample(np.asarray(Image.open(p))) for p in picked])
            cam_stats = feature_stats(images / 255.0, axis=(0, 1, 2))  # per channel, (C,)
            stats[cam] = {k: np.reshape(v, (-1, 1, 1)).tolist() for k, v in cam_stats.items()}
        for name, rows in self._rows.items():
            stats[name] = feature_stats(np.stack(rows), axis=(0,))
        return stats

    def _encode_and_delete(self, pngs: dict[str, list[Path]]) -> tuple[dict, dict]:
        import av
        from PIL import Image

        videos, seconds = {}, {}
        for cam, paths in pngs.items():
            t0 = time.perf_counter()
            height, width = self.cameras[cam][:2]
            path = self.root / "videos" / cam / f"episode_{self.episode_index:06d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            # one camera at a time, so each encode may use every core
            container, stream = open_video(path, self.encoder, height, width, self.fps, 1)
            for png in paths:
                image = np.asarray(Image.open(png).convert("RGB"))
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode(None))
            container.close()
            if paths:
                shutil.rmtree(paths[0].parent)
            videos[cam] = (str(path), 0.0, len(paths) / self.fps)
            seconds[cam] = time.perf_counter() - t0
        return videos, seconds

    def _write_data(self, stats: dict[str, dict]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = len(self._tasks)
        tasks = sorted(set(self._tasks))
        columns = {
            name: pa.FixedSizeListArray.from_arrays(
                pa.array(np.stack(rows).reshape(-1)), int(np.prod(self.features[name]))
            )
            for name, rows in self._rows.items()
        }
        columns["timestamp"] = pa.array(np.arange(n, dtype=np.float32) / self.fps)
        columns["frame_index"] = pa.array(np.arange(n, dtype=np.int64))
        columns["episode_index"] = pa.array(np.full(n, self.episode_index, dtype=np.int64))
        columns["index"] = pa.array(np.arange(n, dtype=np.int64))
        columns["task_index"] = pa.array([tasks.index(t) for t in self._tasks], type=pa.int64())
        path = self.root / "data" / f"episode_{self.episode_index:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), path)
        meta = {"episode_index": self.episode_index, "length": n, "tasks": tasks, "stats": stats}
        (path.parent / f"episode_{self.episode_index:06d}.json").write_text(json.dumps(meta))
        return path
