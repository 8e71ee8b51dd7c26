"""LeRobotDataset.create / .resume's arguments, read as LeRobot reads them, made into the Pipeline
a LeRobotRecorder records through (a maker: highlight.roll() makes it again with preroll_s=).

create() refuses a `root` that exists and resume() one without meta/info.json; both default to
$HF_LEROBOT_HOME/repo_id and never download. LeRobot's options that do not apply are accepted
and ignored (IGNORED_OPTIONS); any other keyword goes to Pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from shmpipe import depth
from shmpipe.dataset import layout
from shmpipe.dataset.info import read_info, shapes
from shmpipe.errors import ConfigError
from shmpipe.integrations.lerobot.encoders import (
    check_depth_encoder,
    encoder_config,
    resume_encoder,
)
from shmpipe.integrations.lerobot.features import default_root, parse_features
from shmpipe.recorder.pipeline import Pipeline

IGNORED_OPTIONS = frozenset({
    "image_writer_processes", "image_writer_threads", "video_backend", "batch_encoding_size",
    "depth_encoder", "metadata_buffer_size", "streaming_encoding", "encoder_queue_maxsize",
    "encoder_threads", "video_files_size_in_mb", "data_files_size_in_mb", "revision",
    "force_cache_sync", "token",
})  # fmt: skip
PipelineMaker = Callable[..., Pipeline]


def pipeline_options(options: Mapping[str, object]) -> dict[str, object]:
    """The keyword arguments for Pipeline: all but LeRobot's options that do not apply."""
    return {k: v for k, v in options.items() if k not in IGNORED_OPTIONS}


def for_create(repo_id: str, fps: int, features: Mapping[str, Mapping],
               root: str | os.PathLike | None, robot_type: str | None, use_videos: bool,
               vcodec: str | None, rgb_encoder: object | None,
               options: Mapping[str, object]) -> PipelineMaker:  # fmt: skip
    """The maker of a Pipeline recording a new dataset, as LeRobotRecorder.create() takes it."""
    if not use_videos:
        raise ConfigError("use_videos=False: LeRobotRecorder stores cameras only as video")
    recording = parse_features(features)
    check_depth_encoder(options.get("depth_encoder"),
                        any(depth.is_depth(s) for s in recording.cameras.values()))  # fmt: skip
    root = (Path(root) if root is not None else default_root(repo_id)).absolute()
    if root.exists():
        raise FileExistsError(f"{root} exists; create() makes a new dataset (as LeRobot's "
                              "does), resume() appends to one")  # fmt: skip
    return partial(Pipeline, root, fps, recording.cameras, recording.features,
                   encoder=encoder_config(vcodec, rgb_encoder), robot_type=robot_type,
                   feature_names=recording.feature_names or None,
                   **pipeline_options(options))  # fmt: skip


def for_resume(repo_id: str, root: str | os.PathLike | None, vcodec: str | None,
               rgb_encoder: object | None,
               options: Mapping[str, object]) -> PipelineMaker:  # fmt: skip
    """The maker of a Pipeline appending to the dataset at `root`, as LeRobotRecorder.resume()
    takes it: with the encoder settings the dataset was recorded with."""
    root = (Path(root) if root is not None else default_root(repo_id)).absolute()
    info_path = root / layout.INFO_PATH
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path}: no dataset to resume (LeRobotRecorder never "
                                "downloads from the Hub)")  # fmt: skip
    info = read_info(info_path)  # LeRobot's own (no shmpipe block): adopted, one scan
    cameras, features = shapes(info)
    check_depth_encoder(options.get("depth_encoder"),
                        any(depth.is_depth(s) for s in cameras.values()))  # fmt: skip
    encoder = resume_encoder(vcodec, rgb_encoder, info)
    return partial(Pipeline, root, info["fps"], cameras, features, encoder=encoder,
                   **pipeline_options(options))  # fmt: skip
