"""Encoder worker: reads one camera's ring in place and encodes each episode to its own MP4.

Frames arrive in ring order, tagged with episode and frame index; control messages say where an
episode's file goes (start), how many frames it has (finish) or that it is void (cancel). The
worker encodes a slot and releases it, so the ring drains at encoder speed.
"""

from __future__ import annotations

import os

from multiprocess.connection import Connection

from shmpipe import messages
from shmpipe.doorbell import Doorbell
from shmpipe.ring import ENCODER_READER, FrameRing
from shmpipe.video_writer import EpisodeVideoWriter
from workers.channel import WorkerChannel, lower_own_priority, main

IDLE_WAIT_S = 0.05


class EncoderLoop:
    def __init__(self, channel: WorkerChannel, spec: messages.EncoderSpec) -> None:
        self.channel = channel
        self.spec = spec
        self.ring = FrameRing.attach(spec.ring_name)
        self.doorbell = Doorbell.attach(spec.doorbell_name)
        # keyed by take (see shmpipe.ring): where its file goes, and how many frames it has
        self.paths: dict[int, str] = {}
        self.targets: dict[int, int] = {}
        self.cancelled: set[int] = set()
        self.failed: set[int] = set()
        self.writer: EpisodeVideoWriter | None = None
        self.take = -1

    def run(self) -> None:
        self.channel.reply(messages.Ready(pid=_pid()))
        try:
            while True:
                for message in self.channel.pending():
                    if isinstance(message, messages.Shutdown):
                        self._drop_writer()
                        return
                    self.handle(message)
                self.encode_available()
                self.finish_if_complete()
                self.doorbell.wait(IDLE_WAIT_S)
        finally:
            self._drop_writer()
            self.ring.close()
            self.doorbell.close()

    def handle(self, message: messages.ToWorker) -> None:
        match message:
            case messages.StartEpisode(take=ep, video_path=path):
                self.paths[ep] = path
            case messages.FinishEpisode(take=ep, num_frames=n):
                self.targets[ep] = n
            case messages.CancelEpisode(take=ep):
                self.cancelled.add(ep)
                if self.take == ep:
                    self._drop_writer()
                self.channel.reply(messages.EpisodeCancelled(take=ep))

    def encode_available(self) -> None:
        while (slot := self.ring.peek(ENCODER_READER)) is not None:
            ep = slot.take
            if ep in self.cancelled or ep in self.failed:
                self.ring.release(ENCODER_READER, slot.seq)
                continue
            if self.writer is None or self.take != ep:
                if ep not in self.paths:
                    return  # its StartEpisode is on the way; frames wait in the ring
                self._drop_writer()
                if not self._open(ep):
                    continue
            seq, frame_index = slot.seq, slot.frame_index
            try:
                self.writer.encode(slot.frame, frame_index)
            except Exception as exc:  # disk full, codec error: the episode fails, we go on
                self._fail(ep, f"encoding frame {frame_index} into {self.writer.path}: {exc}")
            del slot  # drop the view of the slot before handing it back
            self.ring.release(ENCODER_READER, seq)

    def _open(self, ep: int) -> bool:
        s = self.spec
        h, w, _ = self.ring.shape
        try:
            self.writer = EpisodeVideoWriter(
                self.paths[ep],
                s.fps,
                w,
                h,
                s.vcodec,
                s.pix_fmt,
                s.codec_options,
                demote=s.demote,
            )
        except Exception as exc:
            self._fail(ep, f"opening {self.paths[ep]}: {exc}")
            return False
        self.take = ep
        return True

    def finish_if_complete(self) -> None:
        if self.writer is None or self.targets.get(self.take) != self.writer.frames:
            return
        ep, writer = self.take, self.writer
        self.writer, self.take = None, -1
        try:
            seconds, size = writer.finish()
        except Exception as exc:
            writer.abort()
            self.failed.add(ep)
            self.channel.reply(
                messages.WorkerFailed(take=ep, error=f"finishing {writer.path}: {exc}")
            )
            return
        self._forget(ep)
        self.channel.reply(
            messages.EpisodeDone(
                take=ep,
                num_frames=writer.frames,
                flush_seconds=seconds,
                path=str(writer.path),
                size_bytes=size,
            )
        )

    def _fail(self, ep: int, error: str) -> None:
        self._drop_writer()
        self.failed.add(ep)
        self.channel.reply(messages.WorkerFailed(take=ep, error=error))

    def _drop_writer(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer, self.take = None, -1

    def _forget(self, ep: int) -> None:
        self.paths.pop(ep, None)
        self.targets.pop(ep, None)


def _pid() -> int:
    return os.getpid()


def run(conn: Connection, spec: messages.EncoderSpec) -> None:
    lower_own_priority()
    EncoderLoop(WorkerChannel(conn), spec).run()


if __name__ == "__main__":
    main(run)
