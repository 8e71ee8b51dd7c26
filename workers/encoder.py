"""Encoder worker: reads one camera's ring in place and encodes each episode to its own MP4.

Frames arrive in ring order, tagged with take and frame index; control messages say where a
take's file goes (start), how many frames it has (finish) or that it is void (cancel). A slot is
released only once its frame is in a flushed fragment on disk, and then at once (a writer ahead
of us needs it), so if this worker is killed its successor finds every frame it needs either in
the file or still in the ring (workers.held_frames keeps those slots; workers.take_orders what
the worker was told of each take). Rings are sized for the frames the codec holds
(shmpipe.video.probe); should the codec ever hold a whole ring anyway, the worker closes its
segment early (a flush and a keyframe) instead of releasing unsaved frames.
Because of that, a failed encode (the codec refusing a frame or emitting one out of order) costs
nothing: the worker encodes the take again from its last durable frame into a new segment, from
the frames it still holds (at most take_orders.MAX_REENCODES times per take; a full disk fails
at once).

Rolling capture uses the same segments: a rolling take (StartEpisode.roll_frames) is cut every
segment_frames frames and the segments before its window are deleted
(shmpipe.video.rolling_segments), so its disk use stays bounded; once kept, the finish joins the
segments from the first kept frame (a remux, no re-encode).
"""

from __future__ import annotations

import logging
from pathlib import Path

from multiprocess.connection import Connection

from shmpipe import messages
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.ring import ENCODER_READER, RingReader
from shmpipe.video.episode_writer import EpisodeVideoWriter
from shmpipe.video.probe import open_codec
from shmpipe.video.segments import remove_segments

from .base import WorkerLoop, main
from .held_frames import VOID, HeldFrames
from .take_orders import TakeOrders

log = logging.getLogger("shmpipe")


class EncoderLoop(WorkerLoop):
    def __init__(self, conn: Connection, spec: messages.EncoderSpec) -> None:
        self.ring = RingReader.attach(spec.ring_name, ENCODER_READER)
        super().__init__(conn, Doorbell.attach(spec.doorbell_name), [self.ring])
        self.camera, self.video = spec.camera, spec.video
        self.orders = TakeOrders()
        self.writer: EpisodeVideoWriter | None = None
        self.take = -1  # the take being written (-1: none)
        self.held = HeldFrames(self.ring)  # slots read, not yet released

    def prove(self) -> None:
        open_codec(self.video)  # its threads and memory: a short limit fails start()

    def has_unread(self) -> bool:
        return self.held.unread()

    def work(self) -> None:
        self.encode_available()
        self.finish_if_complete()
        self.release_durable()

    def handle(self, message: messages.ToWorker) -> None:
        match message:
            case messages.StartEpisode():
                self.orders.start(message)
            case messages.FinishEpisode():
                self.orders.finish(message)
            case messages.CancelEpisode(take=take):
                # answer first: dropping the writer drains the codec (seconds at 720p), and
                # nobody waits for that; the take's frames are skipped from now on
                path = self.orders.void_take(take)
                self.reply(messages.EpisodeCancelled(take=take))
                if self.take == take:
                    self._drop_writer()
                elif path is not None:
                    remove_segments(Path(path))

    def encode_available(self) -> None:
        """Encode every unread frame; back to the loop as soon as a control message waits (a
        cancel is then heard within one frame's encoding, however far behind we are)."""
        held, orders = self.held, self.orders
        while held.unread():
            if self.messages_waiting():
                return
            slot = self.ring.read(held.next_seq)
            take, index = slot.take, slot.frame_index
            if orders.skips(take):
                held.hold(slot.seq, take, VOID)
                continue
            if self.writer is None or self.take != take:
                if take not in orders.paths:
                    return  # its StartEpisode is on the way; the frame waits in the ring
                if self._whole():  # the next take's frames follow a finish at once
                    self.finish_if_complete()
                    return
                self._drop_writer()
                if not self._open(take, index):
                    continue
            if take in orders.rolls and not self._roll(take, index):
                continue
            held.hold(slot.seq, take, index)
            try:
                self.writer.encode(slot.frame, index)
                failed = None
            except Exception as exc:  # codec error: encode again; disk full: the take fails
                failed = exc
            del slot  # no view of the slot may outlive its release
            if failed is not None:
                self._recover(f"encoding frame {index} into {self.writer.path}", failed)
            # at once: a writer behind us needs every free slot now
            held.release_on_disk(self.take, self.writer)
            self.ring.beat()

    def _roll(self, take: int, index: int) -> bool:
        """Rolling capture: a new segment at every segment_frames-th frame, the segments
        before the window deleted; False if the take failed (its frame is skipped)."""
        if not self.orders.rolls[take].cut_at(index, self.writer.first_frame):
            return True
        self._cut_segment()
        if self.writer is None or self.take != take:
            return False
        self.orders.rolls[take].trim(index)
        return True

    def release_durable(self) -> None:
        """Release held frames that are on disk; should the codec still hold the whole ring
        with nothing new to read, cut the segment so that its frames are on disk too."""
        self.held.release_on_disk(self.take, self.writer)
        if self.writer is not None and self.held.full():  # every slot ours, none saved
            self._cut_segment()
            self.held.release_on_disk(self.take, self.writer)

    def _cut_segment(self) -> None:
        take, first = self.take, self.writer.frames
        self.ring.beat(flushing=True)
        try:
            self.writer.close_durably()
        except Exception as exc:
            self._recover(f"flushing {self.writer.path}", exc)
            return
        finally:
            self.ring.beat()
        self.writer = None
        self._open(take, first)

    def _recover(self, doing: str, exc: BaseException) -> None:
        """Encode the open take again from its last durable frame, into a new segment, from
        the frames still held in the ring; fail the take if the disk refused, or if it keeps
        failing."""
        take = self.take
        while True:
            if not self.orders.may_encode_again(take, exc):
                self._fail(take, f"{doing}: {exc}", exc)
                return
            first = self.writer.durable_frames
            log.warning("camera %r: %s: %s; encoding again from frame %d",
                        self.camera, doing, exc, first)  # fmt: skip
            self.writer.close_segment(drain=True)  # its frames before `first` are on disk
            self.writer = None
            if not self._open(take, first):
                return
            try:
                self.held.encode_again(self.writer, take, first)
                return
            except Exception as again:
                doing, exc = f"encoding {self.writer.path} again", again

    def _open(self, take: int, first_frame: int) -> bool:
        try:
            self.writer = EpisodeVideoWriter(self.orders.paths[take], self.video, first_frame)
        except Exception as exc:
            self.take = take
            self._fail(take, f"opening {self.orders.paths[take]}: {exc}", exc)
            return False
        self.take = take
        return True

    def _whole(self) -> bool:
        """The open take has every frame its FinishEpisode counts."""
        return self.writer is not None and self.orders.targets.get(self.take) == self.writer.frames

    def finish_if_complete(self) -> None:
        if not self._whole():
            return
        take, writer = self.take, self.writer
        self.ring.beat(flushing=True)
        try:
            kept_from = self.orders.kept_from(take)
            seconds, size = writer.finish() if kept_from is None else writer.finish(kept_from)
        except Exception as exc:
            self._recover(f"finishing {writer.path}", exc)  # finished again in the next turn
            return
        finally:
            self.ring.beat()
        self.writer, self.take = None, -1
        self.orders.forget(take)
        self.reply(
            messages.EpisodeDone(
                take=take,
                num_frames=writer.frames,
                flush_seconds=seconds,
                path=str(writer.path),
                size_bytes=size,
            )
        )

    def _fail(self, take: int, error: str, exc: BaseException) -> None:
        """The take is lost: say so now (the control process stops the episode at its next
        add_frame), then skip its frames."""
        self._drop_writer()
        self.orders.void_take(take)
        code = getattr(exc, "errno", None)
        self.reply(messages.WorkerFailed(take=take, error=error, errno=code or 0))

    def _drop_writer(self) -> None:
        """Abandon the open take's video and delete its segments."""
        if self.writer is not None:
            self.writer.abort()
            self.writer, self.take = None, -1

    def close(self, crashed: bool) -> None:
        """A bug leaves the segment for the successor to continue; a shutdown or a dead owner
        removes it (a finished episode's file is already renamed into place)."""
        if crashed and self.writer is not None:
            self.writer.close_segment()
            self.writer = None
        self._drop_writer()
        self.held.clear()
        super().close(crashed)


if __name__ == "__main__":
    main(EncoderLoop)
