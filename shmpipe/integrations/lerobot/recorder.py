"""A drop-in for LeRobot's `LeRobotDataset` on the recording side, without importing LeRobot.

`LeRobotRecorder.create(...)` takes what `LeRobotDataset.create(...)` takes and answers what
`lerobot-record` asks of its dataset (add_frame with "task", save_episode, clear_episode_buffer,
finalize, num_episodes, fps, features, meta, push_to_hub), recording through a Pipeline: frames
are encoded while the episode goes on, and save_episode hands the episode over to commit in the
background (Pipeline.finish_episode(wait=False)): the record loop never waits for the encoders.

- `features` is LeRobot's dict (what `hw_to_dataset_features` produces): 'video' or 'image'
  cameras (both stored as video; shape (h, w, 3), or (3, h, w) with names channels, height,
  width), depth cameras (h, w, 1) taking uint16 millimetres (stored as LeRobot stores depth,
  see shmpipe.depth), and vectors (n,) of 'float32', 'float64', 'int32', 'int64' or 'bool'
  (DAgger's `intervention`) with their `names`. Other dtypes ('string', 'language') raise
  ConfigError (a ValueError) naming the feature. LeRobot's index columns, if present, are
  skipped: shmpipe writes them. `features` answers with info.json's dict: every camera as
  (h, w, 3) "video", index columns included, shapes as tuples, as LeRobot loads them.
- add_frame's frame holds every feature and "task". An optional "timestamp" must be
  frame_index / fps within `tolerance_s` (else FrameError): shmpipe stores i / fps, as
  LeRobot does, and would otherwise drop a different timestamp without a word.
- create() refuses a `root` that exists (FileExistsError, as LeRobot). resume() reads the
  dataset at `root`, which defaults to $HF_LEROBOT_HOME/repo_id as for create() (LeRobot
  demands a root there: without one it would download; this never downloads).
- LeRobot's other create/resume options are accepted by keyword and ignored, as they do
  not apply (IGNORED_OPTIONS of shmpipe.integrations.lerobot.pipeline_args, which makes the
  Pipeline from create's and resume's arguments): image_writer_processes,
  image_writer_threads (no temporary images), batch_encoding_size, streaming_encoding,
  encoder_queue_maxsize, encoder_threads (frames are always encoded while recording, one
  process per camera sizing its threads),
  video_backend, metadata_buffer_size, depth_encoder (depth is stored with LeRobot's defaults;
  other depth settings are refused: shmpipe.integrations.lerobot.encoders),
  data/video_files_size_in_mb (one file per episode; info.json records LeRobot's
  defaults), revision, force_cache_sync, token (nothing is downloaded). Any other keyword
  goes to Pipeline (backend, ring_budget_bytes, ...). use_videos=False is refused.
- Encoding: `rgb_encoder` (LeRobot's RGBEncoderConfig, read by attribute) or LeRobot 0.4's
  `vcodec`; by default LeRobot's (libsvtav1, crf 30, g 2, preset 12).
- `writer` is None, so LeRobot's VideoEncodingManager(recorder) only calls finalize(). A
  recorder is truthy even when empty, so lerobot-record's `if dataset: dataset.finalize()`
  always stops the workers; len() is num_frames as in LeRobot.
- LeRobot 0.4.x reads a few more attributes of its dataset (LeRobot04Attributes below): its
  VideoEncodingManager reads `episodes_since_last_encoding` (0: nothing is ever batched) and,
  after an exception, `_get_image_file_path`; its --resume calls `start_image_writer`.
- resume() appends to datasets shmpipe wrote and to those LeRobot's writer wrote (adopted: the
  first resume scans it once, decoding its videos for exact image stats; its files stay).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from shmpipe.errors import ConfigError, FrameError, UsageError
from shmpipe.integrations.lerobot import pipeline_args
from shmpipe.integrations.lerobot.compat04 import LeRobot04Attributes
from shmpipe.integrations.lerobot.features import RecorderMeta, check_timestamp
from shmpipe.integrations.lerobot.hub import HubUpload
from shmpipe.recorder.committer import FinishHandle
from shmpipe.recorder.results import EpisodeResult

__all__ = ["LeRobotRecorder"]
log = logging.getLogger("shmpipe.integrations.lerobot")
NOT_RECORDED = ("task", "timestamp")  # frame keys LeRobot's add_frame takes that are not columns


class LeRobotRecorder(LeRobot04Attributes, HubUpload):
    """Records a LeRobot v3.0 dataset with LeRobotDataset's recording API; swap it in for
    `LeRobotDataset.create` / `.resume` in a record script (the module docstring has the
    details: features, frames, roots, ignored options, encoding)."""

    writer = None

    def __init__(self, make_pipeline: pipeline_args.PipelineMaker, repo_id: str,
                 tolerance_s: float = 1e-4) -> None:  # fmt: skip
        """Starts the Pipeline `make_pipeline()` makes; use create() or resume(). It is kept:
        highlight.roll() makes the Pipeline again with preroll_s=."""
        self.pipeline, self.make_pipeline = make_pipeline().start(), make_pipeline
        self.repo_id, self.tolerance_s = repo_id, tolerance_s
        self.root: Path = self.pipeline.root
        self.meta = RecorderMeta(repo_id, self.root)
        self._last: FinishHandle | None = None
        self._handed: list[tuple[FinishHandle, float]] = []  # each save, and what it took
        self._cameras = frozenset(self.pipeline.cameras)
        self._finalized = False

    @classmethod
    def create(
        cls,
        repo_id: str,
        fps: int,
        features: Mapping[str, Mapping],
        root: str | os.PathLike | None = None,
        robot_type: str | None = None,
        use_videos: bool = True,
        tolerance_s: float = 1e-4,
        *,
        vcodec: str | None = None,
        rgb_encoder: object | None = None,
        **options,
    ) -> LeRobotRecorder:
        """A new, empty dataset at `root` (default $HF_LEROBOT_HOME/repo_id), its encoders
        started; see the class docstring for the arguments that are ignored."""
        pipeline = pipeline_args.for_create(repo_id, fps, features, root, robot_type, use_videos,
                                            vcodec, rgb_encoder, options)  # fmt: skip
        return cls(pipeline, repo_id, tolerance_s)

    @classmethod
    def resume(
        cls,
        repo_id: str,
        root: str | os.PathLike | None = None,
        tolerance_s: float = 1e-4,
        *,
        vcodec: str | None = None,
        rgb_encoder: object | None = None,
        **options,
    ) -> LeRobotRecorder:
        """Append episodes to the dataset at `root` (default $HF_LEROBOT_HOME/repo_id), one
        shmpipe or LeRobot's writer made: indices continue. It appends with the encoder settings
        the dataset was recorded with; a given field other than LeRobot's default must match
        them (ConfigError naming each: shmpipe.integrations.lerobot.encoders). The first resume
        of a dataset LeRobot wrote scans it once (its videos are decoded for exact image
        stats)."""
        pipeline = pipeline_args.for_resume(repo_id, root, vcodec, rgb_encoder, options)
        return cls(pipeline, repo_id, tolerance_s)

    # -- LeRobotDataset's recording methods ------------------------------------------------
    def add_frame(self, frame: Mapping) -> None:
        """Add one time step: every camera (HWC or CHW, uint8 or float in [0, 1]; numpy, or
        anything numpy can read, such as a PIL image) and feature, and "task". All or nothing:
        if it raises, the frame is not in the episode. The frame dict is not changed."""
        self._writable("add_frame")
        if not isinstance(frame, Mapping):
            raise FrameError(f"add_frame expects a dict of feature name -> value plus 'task', "
                             f"got {type(frame).__name__}")  # fmt: skip
        if "task" not in frame:
            raise FrameError("Feature mismatch in `frame` dictionary: missing features: {'task'} "
                             "(every frame carries its task text, as in LeRobot)")  # fmt: skip
        if "timestamp" in frame:
            frames = self.pipeline.episode_frames
            check_timestamp(frame["timestamp"], frames, self.fps, self.tolerance_s)
        values = {}
        for key, value in frame.items():
            if key in NOT_RECORDED:
                continue
            array_like = hasattr(value, "__array__") or hasattr(value, "__array_interface__")
            if key in self._cameras and not isinstance(value, np.ndarray) and array_like:
                value = np.asarray(value)  # PIL image, CPU tensor
            values[key] = value
        self.pipeline.add_frame(values, task=frame["task"])

    def save_episode(self, episode_data: dict | None = None, parallel_encoding=True) -> None:
        """Finish the episode without waiting for its encoders: it commits in the background
        (finish_episode(wait=False)) while the next one records, and meta counts it at once.
        finalize() waits for every commit. If a commit fails, that episode is discarded (the
        `shmpipe` logger says so) and the next save_episode raises its error; UsageError if no
        frame was added."""
        if episode_data is not None:
            raise ConfigError("save_episode(episode_data=...): a pre-built episode buffer is not "
                              "supported; add its frames with add_frame()")  # fmt: skip
        self._writable("save_episode")
        started = time.perf_counter()
        self._last = handle = self.pipeline.finish_episode(wait=False)
        self.meta.committing_too(handle)
        took = time.perf_counter() - started
        self._handed.append((handle, took))
        log.info("shmpipe: episode %d saved: %d frames, save_episode %.3f s (committing in the "
                 "background)", handle.episode_index, handle.num_frames, took)  # fmt: skip
        self.meta.settle()
        if self.meta.failed:
            raise self.meta.failed.pop(0)

    @property
    def saved(self) -> list[tuple[int, int, float]]:
        """(episode index, frames, seconds save_episode took) of each episode this object
        saved, but those whose commit failed (an index is final once committed)."""
        return [(h.result().episode_index if h.done() else h.episode_index, h.num_frames, took)
                for h, took in self._handed if not (h.done() and h.exception())]  # fmt: skip

    @property
    def last_episode(self) -> EpisodeResult | None:
        """What the last save_episode wrote, once committed (this waits for it)."""
        return None if self._last is None else self._last.result()

    def clear_episode_buffer(self, delete_images: bool = True) -> None:
        """Discard the open episode (nothing if none): its frames and partial files are gone,
        and the next frame starts an episode with the same index."""
        self._writable("clear_episode_buffer")
        self.pipeline.cancel_episode()

    def has_pending_frames(self) -> bool:
        """Whether frames were added since the last save_episode / clear_episode_buffer (not
        while rolling: frames in the window are no episode's until keep())."""
        return self.pipeline.episode_frames > 0 and not self.pipeline.rolling

    @property
    def finalized(self) -> bool:
        return self._finalized

    def finalize(self) -> None:
        """Stop the workers and release shared memory; idempotent. An episode still open is
        discarded, with a warning on the `shmpipe` logger (only save_episode keeps frames).
        The dataset stays readable: meta, num_episodes and num_frames still answer."""
        if self._finalized:
            return
        self._finalized = True
        self.pipeline.close()  # every commit first
        self.meta.settle(wait=True)

    def _writable(self, method: str) -> None:
        if self._finalized:
            raise UsageError(f"{method}(): the recorder was finalized; "
                             "LeRobotRecorder.resume() records more episodes")  # fmt: skip

    # -- what lerobot-record reads ------------------------------------------------------------
    @property
    def fps(self) -> int:
        return self.meta.fps

    @property
    def features(self) -> dict[str, dict]:
        return self.meta.features

    @property
    def num_episodes(self) -> int:
        """Episodes saved (LeRobot's meta.total_episodes while recording)."""
        return self.meta.total_episodes

    @property
    def num_frames(self) -> int:
        """Frames of the saved episodes (LeRobot's meta.total_frames while recording)."""
        return self.meta.total_frames

    def __len__(self) -> int:
        return self.num_frames

    def __bool__(self) -> bool:
        return True

    def __enter__(self) -> LeRobotRecorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.finalize()

    def __repr__(self) -> str:
        return (f"LeRobotRecorder(repo_id={self.repo_id!r}, root={str(self.root)!r}, "
                f"num_episodes={self.num_episodes}, num_frames={self.num_frames}, "
                f"finalized={self._finalized})")  # fmt: skip
