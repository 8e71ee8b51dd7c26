"""The protocol between the recorder (control process) and its workers: both sides import this
module and nothing else of each other (the socket between them carries only these messages).

Every message is a msgspec Struct tagged by its class name, so a worker decides what it got with
`match`. Frames never travel here: a message only says where an episode starts and ends.
"""

from __future__ import annotations

import msgspec

from shmpipe.video.settings import VideoSettings


class Owner(msgspec.Struct, frozen=True):
    """The control process's object group (see shmpipe.ipc.names): a worker cleans up after it."""

    pid: int
    token: str


class EncoderSpec(msgspec.Struct, tag=True):
    """What an encoder worker needs to attach to its camera's ring and encode it."""

    camera: str
    ring_name: str
    doorbell_name: str
    owner: Owner
    video: VideoSettings


class StatsSpec(msgspec.Struct, tag=True):
    """What the stats worker needs: every camera's ring and the shared accumulator block."""

    cameras: list[str]
    ring_names: list[str]
    doorbell_name: str
    store_name: str
    owner: Owner
    priority: str | int = 10  # as VideoSettings.priority: the stats worker must not starve either
    encoder_doorbells: list[str] = []  # per ring: its encoder's, which the stats worker rings
    segment_frames: int = 0  # rolling capture: a histogram snapshot every this many frames
    snapshots: int = 0  # slots per camera for them (ipc.histogram_store)


class PreviewSpec(msgspec.Struct, tag=True):
    """What the preview worker needs: every camera's ring to peek at, the latest-row block
    (shmpipe.ipc.latest_row; "" if no numeric features) and where the pictures go (Rerun:
    `mode` "spawn" a viewer, "connect" to `url`, or "save" to the file `path`)."""

    cameras: list[str]
    ring_names: list[str]
    row_name: str
    features: dict[str, list[int]]
    owner: Owner
    mode: str
    url: str = ""
    path: str = ""
    max_height: int = 240
    fps: float = 10.0
    application_id: str = "shmpipe"
    memory_limit: str = "10%"  # of RAM, for a viewer it spawns (LeRobot's default)
    jpeg_quality: int = 0  # 0: raw pixels; else JPEG at this quality (for a remote viewer)
    priority: str | int = 19  # it must yield to the encoders and the control loop


class StartEpisode(msgspec.Struct, tag=True):
    """Take `take` begins; the encoder leaves its file at `video_path`. Workers key everything
    on the take: a cancelled episode's index is reused, its take is not.

    Rolling capture (`roll_frames` > 0): the encoder writes the take in segments of
    `segment_frames` frames and deletes those that end more than `roll_frames` frames before
    its newest frame, until the take is sent again with `kept_from` >= 0 (a segment start): the
    episode is then frames `kept_from` .. num_frames - 1, and earlier segments are deleted."""

    take: int
    video_path: str = ""
    roll_frames: int = 0
    segment_frames: int = 0
    kept_from: int = -1


class FinishEpisode(msgspec.Struct, tag=True):
    """The episode ends after `num_frames` frames (frame indices 0 .. num_frames - 1)."""

    take: int
    num_frames: int


class CancelEpisode(msgspec.Struct, tag=True):
    """Discard the episode: skip its frames and delete its partial files."""

    take: int


class Shutdown(msgspec.Struct, tag=True):
    """Stop the worker now; an open episode is discarded."""


class Ready(msgspec.Struct, tag=True):
    """The worker attached to its rings and waits for frames."""

    pid: int


class EpisodeDone(msgspec.Struct, tag=True):
    """A worker has everything of the episode: for an encoder, the file is complete and renamed;
    for the stats worker, `histograms` holds each camera's pixel counts of the episode (int64,
    native order, in the cameras' order): the next episode's frames may be counted before the
    control process reads them, so they travel with the reply."""

    take: int
    num_frames: int
    flush_seconds: float = 0.0
    path: str = ""
    size_bytes: int = 0
    histograms: list[bytes] = []


class EpisodeCancelled(msgspec.Struct, tag=True):
    """A worker dropped the episode and removed what it had written of it."""

    take: int


class WorkerFailed(msgspec.Struct, tag=True):
    """A worker could not complete the episode; `error` says why (and names the file if any),
    `errno` the OS error behind it (0 if none: e.g. ENOSPC is the disk, ENOMEM the codec).
    Sent the moment it happens, so the control process can stop the episode at once."""

    take: int
    error: str
    errno: int = 0


ToWorker = (StartEpisode | FinishEpisode | CancelEpisode | Shutdown | EncoderSpec | StatsSpec
            | PreviewSpec)  # fmt: skip
FromWorker = Ready | EpisodeDone | EpisodeCancelled | WorkerFailed

_to_worker = msgspec.msgpack.Decoder(ToWorker)
_from_worker = msgspec.msgpack.Decoder(FromWorker)
_encoder = msgspec.msgpack.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


def decode_to_worker(data: bytes) -> ToWorker:
    return _to_worker.decode(data)


def decode_from_worker(data: bytes) -> FromWorker:
    return _from_worker.decode(data)
