"""Encoder worker: reads one camera's ring in place and encodes each episode to its own MP4.

Frames arrive in ring order, tagged with take and frame index; control messages say where a
take's file goes (start), how many frames it has (finish) or that it is void (cancel). A slot
is released only once its frame is in a flushed fragment on disk, so if this worker is killed
its successor finds every frame it needs either in the file or still in the ring. (When the ring
is nearly full the worker releases frames as soon as they are encoded instead, so that it never
starves itself of input; `Pipeline` sizes rings so this does not happen at normal settings.)
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from multiprocess.connection import Connection

from shmpipe import messages
from shmpipe.doorbell import Doorbell
from shmpipe.ring import ENCODER_READER, FrameRing
from shmpipe.video_writer import EpisodeVideoWriter, remove_segments
from workers.channel import WorkerChannel, lower_own_priority, main

IDLE_WAIT_S = 0.02


class EncoderLoop:
    def __init__(self, channel: WorkerChannel, spec: messages.EncoderSpec) -> None:
        self.channel = channel
        self.spec = spec
        self.ring = FrameRing.attach(spec.ring_name)
        self.doorbell = Doorbell.attach(spec.doorbell_name)
        # keyed by take (see shmpipe.ring): where its file goes, and how many frames it has
        self.paths: dict[int, str] = {}
        self.targets: dict[int, int] = {}
        self.newest_take = 0  # the highest take announced; older unannounced takes are void
        self.void: set[int] = set()  # cancelled or failed takes: their frames are skipped
        self.writer: EpisodeVideoWriter | None = None
        self.take = -1
        self.next_seq = self.ring.released(ENCODER_READER)  # next frame to read
        self.held: deque[tuple[int, int, int]] = deque()  # (seq, take, frame index) unreleased
        self.pressure = max(2, self.ring.capacity // 8)

    def run(self) -> None:
        self.channel.reply(messages.Ready(pid=os.getpid()))
        try:
            while True:
                for message in self.channel.pending():
                    if isinstance(message, messages.Shutdown):
                        return
                    self.handle(message)
                self.encode_available()
                self.finish_if_complete()
                self.release_durable()
                self.sleep()
        except Exception:
            # a bug, not a request to stop: leave the segment for the successor to continue
            if self.writer is not None:
                self.writer.close_segment()
                self.writer, self.take = None, -1
            raise
        finally:
            self._drop_writer()
            self.held.clear()
            self.ring.close()
            self.doorbell.close()

    def sleep(self) -> None:
        """Wait for the doorbell unless frames arrived since we last looked."""
        self.ring.set_asleep(ENCODER_READER, True)
        if self.next_seq == self.ring.write_seq:
            self.doorbell.wait(IDLE_WAIT_S)
        self.ring.set_asleep(ENCODER_READER, False)

    def handle(self, message: messages.ToWorker) -> None:
        match message:
            case messages.StartEpisode(take=take, video_path=path):
                self.paths[take] = path
                self.newest_take = max(self.newest_take, take)
            case messages.FinishEpisode(take=take, num_frames=n):
                self.targets[take] = n
            case messages.CancelEpisode(take=take):
                self.void.add(take)
                if self.take == take:
                    self._drop_writer()
                elif take in self.paths:
                    remove_segments(Path(self.paths[take]))
                self._forget(take)
                self.channel.reply(messages.EpisodeCancelled(take=take))

    def encode_available(self) -> None:
        while self.next_seq < self.ring.write_seq:
            slot = self.ring.read(self.next_seq)
            take, index = slot.take, slot.frame_index
            if take in self.void or (take < self.newest_take and take not in self.paths):
                self._hold(slot.seq, take, -1)
                continue
            if self.writer is None or self.take != take:
                if take not in self.paths:
                    return  # its StartEpisode is on the way; the frame waits in the ring
                self._drop_writer()
                if not self._open(take, index):
                    continue
            try:
                self.writer.encode(slot.frame, index)
            except Exception as exc:  # disk full, codec error: the take fails, we go on
                self._fail(take, f"encoding frame {index} into {self.writer.path}: {exc}")
            self._hold(slot.seq, take, index)
            del slot  # no view of the slot may outlive its release

    def _hold(self, seq: int, take: int, index: int) -> None:
        self.held.append((seq, take, index))
        self.next_seq = seq + 1
        self.ring.set_progress(ENCODER_READER, self.next_seq)

    def release_durable(self) -> None:
        """Release held frames, oldest first, that are on disk (or void); under ring pressure,
        every frame already encoded."""
        under_pressure = self.ring.slots_used() >= self.ring.capacity - self.pressure
        while self.held:
            seq, take, index = self.held[0]
            on_disk = (
                index < 0
                or take != self.take
                or self.writer is None
                or index < self.writer.durable_frames
            )
            if not (on_disk or under_pressure):
                break
            self.held.popleft()
            self.ring.release(ENCODER_READER, seq)

    def _open(self, take: int, first_frame: int) -> bool:
        s = self.spec
        h, w, _ = self.ring.shape
        try:
            self.writer = EpisodeVideoWriter(
                self.paths[take],
                s.fps,
                w,
                h,
                s.vcodec,
                s.pix_fmt,
                s.codec_options,
                first_frame=first_frame,
                demote=s.demote,
            )
        except Exception as exc:
            self.take = take
            self._fail(take, f"opening {self.paths[take]}: {exc}")
            return False
        self.take = take
        return True

    def finish_if_complete(self) -> None:
        if self.writer is None or self.targets.get(self.take) != self.writer.frames:
            return
        take, writer = self.take, self.writer
        try:
            seconds, size = writer.finish()
        except Exception as exc:
            self._fail(take, f"finishing {writer.path}: {exc}")
            return
        self.writer, self.take = None, -1
        self._forget(take)
        self.channel.reply(
            messages.EpisodeDone(
                take=take,
                num_frames=writer.frames,
                flush_seconds=seconds,
                path=str(writer.path),
                size_bytes=size,
            )
        )

    def _fail(self, take: int, error: str) -> None:
        self._drop_writer()
        self.void.add(take)
        self._forget(take)
        self.channel.reply(messages.WorkerFailed(take=take, error=error))

    def _drop_writer(self) -> None:
        """Abandon the open take's video. (Only a killed worker leaves segments behind, for its
        successor; a worker that can still run code removes them.)"""
        if self.writer is not None:
            self.writer.abort()
            self.writer, self.take = None, -1

    def _forget(self, take: int) -> None:
        self.paths.pop(take, None)
        self.targets.pop(take, None)


def run(conn: Connection, spec: messages.EncoderSpec) -> None:
    lower_own_priority()
    EncoderLoop(WorkerChannel(conn), spec).run()


if __name__ == "__main__":
    main(run)
