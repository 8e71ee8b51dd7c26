"""Encoder worker: reads one camera's ring in place and encodes each episode to its own MP4.

Frames arrive in ring order, tagged with take and frame index; control messages say where a
take's file goes (start), how many frames it has (finish) or that it is void (cancel). A slot is
released only once its frame is in a flushed fragment on disk, and then at once (a writer ahead
of us needs it), so if this worker is killed its successor finds every frame it needs either in
the file or still in the ring. Rings are sized for
the frames the codec holds (shmpipe.video.probe); should the codec ever hold a whole ring anyway,
the worker closes its segment early (a flush and a keyframe) instead of releasing unsaved frames.
Because of that, a failed encode (the codec refusing a frame or emitting one out of order) costs
nothing: the worker encodes the take again from its last durable frame into a new segment, from
the frames it still holds (at most MAX_REENCODES times per take; a full disk fails at once).

Rolling capture uses the same segments: a rolling take (StartEpisode.roll_frames) is cut every
segment_frames frames and the segments before its window are deleted
(shmpipe.video.rolling_segments), so its disk use stays bounded; once kept, the finish joins the
segments from the first kept frame (a remux, no re-encode).
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

from multiprocess.connection import Connection

from shmpipe import messages
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.ring import ENCODER_READER, RingReader
from shmpipe.video.episode_writer import EpisodeVideoWriter, retryable
from shmpipe.video.probe import open_codec
from shmpipe.video.rolling_segments import RollingSegments
from shmpipe.video.segments import remove_segments

from .base import WorkerLoop, main

log = logging.getLogger("shmpipe")
MAX_REENCODES = 3  # per take: the codec's misorder is rare (~1 in 30,000 frames under load)


class EncoderLoop(WorkerLoop):
    def __init__(self, conn: Connection, spec: messages.EncoderSpec) -> None:
        self.ring = RingReader.attach(spec.ring_name, ENCODER_READER)
        super().__init__(conn, Doorbell.attach(spec.doorbell_name), [self.ring])
        self.camera, self.video = spec.camera, spec.video
        # keyed by take (see shmpipe.ipc.ring): where its file goes, and how many frames it has
        self.paths: dict[int, str] = {}
        self.rolls: dict[int, RollingSegments] = {}  # rolling takes
        self.targets: dict[int, int] = {}
        self.newest_take = 0  # the highest take announced; older unannounced takes are void
        self.void: set[int] = set()  # cancelled or failed takes: their frames are skipped
        self.writer: EpisodeVideoWriter | None = None
        self.take = -1
        self.next_seq = self.ring.released(ENCODER_READER)  # next frame to read
        self.held: deque[tuple[int, int, int]] = deque()  # (seq, take, frame index) unreleased
        self.reencodes: dict[int, int] = {}  # take -> times encoded again after a failure

    def prove(self) -> None:
        open_codec(self.video)  # its threads and memory: a short limit fails start()

    def has_unread(self) -> bool:
        return self.ring.unread(self.next_seq)

    def work(self) -> None:
        self.encode_available()
        self.finish_if_complete()
        self.release_durable()

    def handle(self, message: messages.ToWorker) -> None:
        match message:
            case messages.StartEpisode(take=take, video_path=path):
                self.paths[take] = path
                self.newest_take = max(self.newest_take, take)
                if message.roll_frames > 0:  # sent again with kept_from by a keep
                    self.rolls[take] = RollingSegments(Path(path), message.roll_frames,
                                                       message.segment_frames, message.kept_from)
            case messages.FinishEpisode(take=take, num_frames=n):
                self.targets[take] = n
            case messages.CancelEpisode(take=take):
                # answer first: dropping the writer drains the codec (seconds at 720p), and
                # nobody waits for that; the take's frames are skipped from now on
                self.void.add(take)
                self.reply(messages.EpisodeCancelled(take=take))
                if self.take == take:
                    self._drop_writer()
                elif take in self.paths:
                    remove_segments(Path(self.paths[take]))
                self._forget(take)

    def encode_available(self) -> None:
        """Encode every unread frame; back to the loop as soon as a control message waits (a
        cancel is then heard within one frame's encoding, however far behind we are)."""
        while self.ring.unread(self.next_seq):
            if self.messages_waiting():
                return
            slot = self.ring.read(self.next_seq)
            take, index = slot.take, slot.frame_index
            if take in self.void or (take < self.newest_take and take not in self.paths):
                self._hold(slot.seq, take, -1)
                continue
            if self.writer is None or self.take != take:
                if take not in self.paths:
                    return  # its StartEpisode is on the way; the frame waits in the ring
                if self._whole():  # the next take's frames follow a finish at once
                    self.finish_if_complete()
                    return
                self._drop_writer()
                if not self._open(take, index):
                    continue
            if take in self.rolls and not self._roll(take, index):
                continue
            self._hold(slot.seq, take, index)
            try:
                self.writer.encode(slot.frame, index)
                failed = None
            except Exception as exc:  # codec error: encode again; disk full: the take fails
                failed = exc
            del slot  # no view of the slot may outlive its release
            if failed is not None:
                self._recover(f"encoding frame {index} into {self.writer.path}", failed)
            self._release_on_disk()  # at once: a writer behind us needs every free slot now
            self.ring.beat()

    def _roll(self, take: int, index: int) -> bool:
        """Rolling capture: a new segment at every segment_frames-th frame, the segments
        before the window deleted; False if the take failed (its frame is skipped)."""
        if not self.rolls[take].cut_at(index, self.writer.first_frame):
            return True
        self._cut_segment()
        if self.writer is None or self.take != take:
            return False
        self.rolls[take].trim(index)
        return True

    def _hold(self, seq: int, take: int, index: int) -> None:
        self.held.append((seq, take, index))
        self.next_seq = seq + 1
        self.ring.set_progress(self.next_seq)

    def release_durable(self) -> None:
        """Release held frames that are on disk; should the codec still hold the whole ring
        with nothing new to read, cut the segment so that its frames are on disk too."""
        self._release_on_disk()
        if self._starving():
            self._cut_segment()
            self._release_on_disk()

    def _release_on_disk(self) -> None:
        """Release held frames, oldest first, that are on disk (or void)."""
        released = None
        while self.held:
            seq, take, index = self.held[0]
            on_disk = (
                index < 0
                or take != self.take
                or self.writer is None
                or index < self.writer.durable_frames
            )
            if not on_disk:
                break
            self.held.popleft()
            released = seq + 1
        if released is not None:
            self.ring.release_through(released)

    def _starving(self) -> bool:
        """Every slot is held by us, unsaved, and nothing new can arrive."""
        return (
            self.writer is not None
            and len(self.held) >= self.ring.capacity - 1
            and not self.ring.unread(self.next_seq)
        )

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
            tries = self.reencodes.get(take, 0)
            if not retryable(exc) or tries >= MAX_REENCODES:
                self._fail(take, f"{doing}: {exc}", exc)
                return
            self.reencodes[take] = tries + 1
            first = self.writer.durable_frames
            log.warning("camera %r: %s: %s; encoding again from frame %d",
                        self.camera, doing, exc, first)  # fmt: skip
            self.writer.close_segment(drain=True)  # its frames before `first` are on disk
            self.writer = None
            if not self._open(take, first):
                return
            try:
                self._encode_held(take, first)
                return
            except Exception as again:
                doing, exc = f"encoding {self.writer.path} again", again

    def _encode_held(self, take: int, first: int) -> None:
        for seq, held_take, index in list(self.held):
            if held_take == take and index >= first:
                slot = self.ring.read(seq)
                self.writer.encode(slot.frame, index)
                del slot
                self.ring.beat()

    def _open(self, take: int, first_frame: int) -> bool:
        try:
            self.writer = EpisodeVideoWriter(self.paths[take], self.video, first_frame)
        except Exception as exc:
            self.take = take
            self._fail(take, f"opening {self.paths[take]}: {exc}", exc)
            return False
        self.take = take
        return True

    def _whole(self) -> bool:
        """The open take has every frame its FinishEpisode counts."""
        return self.writer is not None and self.targets.get(self.take) == self.writer.frames

    def finish_if_complete(self) -> None:
        if not self._whole():
            return
        take, writer = self.take, self.writer
        self.ring.beat(flushing=True)
        try:
            roll = self.rolls.get(take)
            seconds, size = writer.finish(roll.first_kept) if roll else writer.finish()
        except Exception as exc:
            self._recover(f"finishing {writer.path}", exc)  # finished again in the next turn
            return
        finally:
            self.ring.beat()
        self.writer, self.take = None, -1
        self._forget(take)
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
        self.void.add(take)
        self._forget(take)
        code = getattr(exc, "errno", None)
        self.reply(messages.WorkerFailed(take=take, error=error, errno=code or 0))

    def _drop_writer(self) -> None:
        """Abandon the open take's video and delete its segments."""
        if self.writer is not None:
            self.writer.abort()
            self.writer, self.take = None, -1

    def _forget(self, take: int) -> None:
        self.paths.pop(take, None)
        self.rolls.pop(take, None)
        self.targets.pop(take, None)
        self.reencodes.pop(take, None)

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
