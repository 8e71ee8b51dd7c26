"""shmpipe: record multi-camera robot episodes to AV1 while recording goes on.

The control loop copies each frame once into a shared-memory ring per camera; encoder and stats
workers read the rings in place, so finishing an episode only flushes what is left.
"""

from shmpipe.config import VideoEncoderConfig
from shmpipe.errors import (
    ConfigError,
    DatasetError,
    FrameError,
    RingFullError,
    SharedMemoryError,
    ShmpipeError,
    UsageError,
    WorkerError,
)
from shmpipe.pipeline import Pipeline
from shmpipe.results import CameraStatus, EpisodeResult, PipelineStatus, StatsStatus, VideoSpan

__all__ = [
    "CameraStatus",
    "ConfigError",
    "DatasetError",
    "EpisodeResult",
    "FrameError",
    "Pipeline",
    "PipelineStatus",
    "RingFullError",
    "SharedMemoryError",
    "ShmpipeError",
    "StatsStatus",
    "UsageError",
    "VideoEncoderConfig",
    "VideoSpan",
    "WorkerError",
]
