"""shmpipe: record multi-camera robot episodes to AV1 while recording goes on.

The control loop copies each frame once into a shared-memory ring per camera; encoder and stats
workers read the rings in place, so finishing an episode only flushes what is left.

The names below are the public API. They load lazily, so `import shmpipe.ipc.ring` (what a
worker does) loads nothing of the recorder, the dataset or pyarrow. Every other module is internal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shmpipe.dataset.feature_types import FeatureSpec as FeatureSpec
    from shmpipe.errors import ConfigError as ConfigError
    from shmpipe.errors import DatasetError as DatasetError
    from shmpipe.errors import FrameError as FrameError
    from shmpipe.errors import RingFullError as RingFullError
    from shmpipe.errors import SharedMemoryError as SharedMemoryError
    from shmpipe.errors import ShmpipeError as ShmpipeError
    from shmpipe.errors import SourceError as SourceError
    from shmpipe.errors import UsageError as UsageError
    from shmpipe.errors import WorkerError as WorkerError
    from shmpipe.recorder.pipeline import Pipeline as Pipeline
    from shmpipe.recorder.preview import PreviewConfig as PreviewConfig
    from shmpipe.recorder.results import CameraStatus as CameraStatus
    from shmpipe.recorder.results import EpisodeResult as EpisodeResult
    from shmpipe.recorder.results import PipelineStatus as PipelineStatus
    from shmpipe.recorder.results import PreviewStatus as PreviewStatus
    from shmpipe.recorder.results import StatsStatus as StatsStatus
    from shmpipe.recorder.results import VideoSpan as VideoSpan
    from shmpipe.video.encoder_config import VideoEncoderConfig as VideoEncoderConfig

_ERRORS = ("ConfigError", "DatasetError", "FrameError", "RingFullError", "SharedMemoryError",
           "ShmpipeError", "SourceError", "UsageError", "WorkerError")  # fmt: skip
_RESULTS = ("CameraStatus", "EpisodeResult", "PipelineStatus", "PreviewStatus", "StatsStatus",
            "VideoSpan")  # fmt: skip
_HOME = {
    **dict.fromkeys(_ERRORS, "shmpipe.errors"),
    **dict.fromkeys(_RESULTS, "shmpipe.recorder.results"),
    "FeatureSpec": "shmpipe.dataset.feature_types",
    "Pipeline": "shmpipe.recorder.pipeline",
    "PreviewConfig": "shmpipe.recorder.preview",
    "VideoEncoderConfig": "shmpipe.video.encoder_config",
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> object:
    """Load a public name from its module on first use (PEP 562)."""
    try:
        module = _HOME[name]
    except KeyError:
        raise AttributeError(f"module 'shmpipe' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
