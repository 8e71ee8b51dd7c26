"""The live preview as the control process sees it: its settings, and a worker nobody waits for.

`PreviewConfig` says where pictures go (a Rerun viewer spawned here, a remote one, or an .rrd
file). `PreviewWorker` starts workers/preview.py beside the encoders but outside the supervisor:
it holds no ring slot and answers no episode message, so add_frame and finish_episode never wait
for it; if it dies, status() restarts it a few times and then reports it dead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shmpipe import messages
from shmpipe.errors import ConfigError
from shmpipe.ipc.latest_row import LatestRow
from shmpipe.recorder.results import PreviewStatus
from shmpipe.recorder.worker_handle import PREVIEW_WORKER, WorkerHandle, stop_workers

PreviewMode = Literal["spawn", "connect", "save"]
DEFAULT_VIEWER_PORT = 9876  # Rerun's gRPC port
MAX_RESTARTS = 3
STOP_GRACE_S = 0.5  # for a file sink to write its end; a viewer that does not read is dropped
INSTALL_HINT = "pip install 'shmpipe[preview]'"


@dataclass(frozen=True)
class PreviewConfig:
    """A live view of every camera (downsampled to at most `max_height` rows, `fps` pictures a
    second) and of the numeric features as time series, in Rerun. `mode`: "spawn" a viewer on
    this machine; "connect" to a viewer at `address` ("host:port", or a rerun+http:// URL; a
    robot without a screen, like LeRobot's --display_ip/--display_port); "save" to the .rrd file
    `path`. `jpeg_quality` (1-100) sends JPEG instead of raw pixels (for a remote viewer);
    `memory_limit` is a spawned viewer's (LeRobot's default)."""

    mode: PreviewMode = "spawn"
    address: str = ""
    path: str | os.PathLike = ""
    max_height: int = 240
    fps: float = 10.0
    jpeg_quality: int | None = None
    memory_limit: str = "10%"
    application_id: str = "shmpipe"

    def __post_init__(self) -> None:
        if self.mode not in ("spawn", "connect", "save"):
            raise ConfigError(f"preview mode {self.mode!r}: expected spawn, connect or save")
        if self.mode == "save" and not str(self.path):
            raise ConfigError("preview mode 'save' needs path= (the .rrd file to write)")
        if not 16 <= self.max_height <= 4096 or not 0 < self.fps <= 60:
            raise ConfigError(f"preview max_height {self.max_height} (16..4096) or fps "
                              f"{self.fps} (0..60] out of range")  # fmt: skip
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"preview jpeg_quality {self.jpeg_quality}: expected 1..100")

    @property
    def url(self) -> str:
        """The viewer to connect to, as Rerun wants it."""
        if "://" in self.address:
            return self.address
        host, _, port = (self.address or "127.0.0.1").partition(":")
        return f"rerun+http://{host}:{port or DEFAULT_VIEWER_PORT}/proxy"


def check_installed(config: PreviewConfig | None) -> None:
    """ConfigError naming the extra to install if a preview is asked for and rerun-sdk (0.23 or
    later: rr.Scalars, set_time) is missing; checked by start() before anything is made."""
    if config is None:
        return
    if not isinstance(config, PreviewConfig):
        raise ConfigError(f"preview: expected a PreviewConfig or None, got {config!r}")
    if importlib.util.find_spec("rerun") is None:
        raise ConfigError(f"the preview shows cameras in Rerun, which is not installed: "
                          f"{INSTALL_HINT} (or pip install rerun-sdk)")  # fmt: skip
    try:
        version = importlib.metadata.version("rerun-sdk")
    except importlib.metadata.PackageNotFoundError:
        return  # importable without its metadata (a vendored copy): trust it
    if tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) < (0, 23):
        raise ConfigError(f"the preview needs rerun-sdk 0.23 or later, found {version}: "
                          f"{INSTALL_HINT}")  # fmt: skip


class PreviewWorker:
    """The preview worker and the latest-row block add_frame writes for it."""

    def __init__(self, stack: ExitStack, config: PreviewConfig, rings: Mapping[str, str],
                 features: Mapping[str, tuple[int, ...]], owner: messages.Owner,
                 name_of: Callable[[str], str], backend: str) -> None:  # fmt: skip
        self.row = LatestRow.create(name_of("row"), features) if features else None
        if self.row is not None:
            stack.callback(self.row.unlink)  # the creator removes the name, after closing
            stack.callback(self.row.close)
        self.spec = messages.PreviewSpec(
            list(rings), list(rings.values()), self.row.name if self.row else "",
            {name: list(shape) for name, shape in features.items()}, owner, config.mode,
            config.url if config.mode == "connect" else "", os.fspath(config.path),
            config.max_height, config.fps, config.application_id, config.memory_limit,
            config.jpeg_quality or 0,
        )  # fmt: skip
        self.backend, self.restarts = backend, 0
        self.handle = WorkerHandle(PREVIEW_WORKER, self.spec, backend)
        stack.callback(self.stop)

    def publish_row(self, row: Mapping[str, np.ndarray], take: int, frame_index: int) -> None:
        if self.row is not None:
            self.row.publish(row, take, frame_index)

    def status(self) -> PreviewStatus:
        """Its pid and liveness; a dead worker is replaced (MAX_RESTARTS times at most)."""
        if not self.handle.alive() and self.restarts < MAX_RESTARTS:
            self.handle.kill()
            self.handle = WorkerHandle(PREVIEW_WORKER, self.spec, self.backend)
            self.restarts += 1
        try:
            self.handle.collect()  # its Ready: the pid a thread or a process reports
        except (EOFError, OSError):
            pass
        handle, mode = self.handle, self.spec.mode
        return PreviewStatus(handle.pid, handle.alive(), self.restarts, mode, handle.ready)

    def stop(self) -> None:
        """Shutdown, STOP_GRACE_S to finish its file, then killed (a stopped or blocked one)."""
        stop_workers([self.handle], STOP_GRACE_S)
