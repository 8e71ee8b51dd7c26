"""The encoder worker's loop on a real ring, in this process: it releases each frame as soon as
the frame is on disk, even while it is behind, and cuts its segment only when the codec itself
holds the whole ring."""

from __future__ import annotations

import os
from contextlib import ExitStack

import pytest
from multiprocess import Pipe

from shmpipe import messages
from shmpipe.ipc import names
from shmpipe.ipc.doorbell import Doorbell
from shmpipe.ipc.ring import ENCODER_READER, STATS_READER, RingReader, RingWriter
from shmpipe.video import probe
from tests.helpers.frames import value_of
from tests.helpers.small_video import SIZE, SMALL_AV1, assert_flat_frames, flat
from workers.encoder import EncoderLoop

TAKE = 1
KEYFRAME_INTERVAL = 2  # SMALL_AV1's g


@pytest.fixture
def stack():
    with ExitStack() as stack:
        yield stack


def encoder_on_ring(stack: ExitStack, capacity: int, video_path) -> tuple[EncoderLoop, RingWriter]:
    """A ring of `capacity` slots and an EncoderLoop reading it, told where TAKE's video goes."""
    owner = messages.Owner(os.getpid(), names.new_token())
    stack.callback(names.OwnerLock(owner.pid, owner.token).release)
    ring = RingWriter.create(names.object_name(owner.pid, owner.token, "ring0"), capacity,
                             (SIZE, SIZE, 3))  # fmt: skip
    stack.callback(ring.unlink)
    stack.callback(ring.close)
    bell = Doorbell.create(names.object_name(owner.pid, owner.token, "bell0"))
    stack.callback(bell.unlink)
    stack.callback(bell.close)
    ours, theirs = Pipe()
    stack.callback(ours.close)
    spec = messages.EncoderSpec("front", ring.name, bell.name, owner, SMALL_AV1)
    loop = EncoderLoop(theirs, spec)
    stack.callback(loop.close, False)
    loop.handle(messages.StartEpisode(take=TAKE, video_path=str(video_path)))
    return loop, ring


def publish(ring: RingWriter, start: int, stop: int) -> None:
    """Frames start..stop-1 of TAKE (flat at value_of(i)), seen at once by a stats reader."""
    for i in range(start, stop):
        slot = ring.claim()
        assert slot is not None, f"frame {i}: no free slot"
        slot[...] = flat(value_of(i))
        ring.publish(TAKE, i)
    stats = RingReader.attach(ring.name, STATS_READER)
    stats.release_through(stop)
    stats.close()


def feed_and_finish(loop: EncoderLoop, ring: RingWriter, start: int, total: int) -> None:
    """Publish frames start..total-1 as slots free up, then finish the take."""
    while start < total:
        free = min(ring.capacity - ring.slots_used(), total - start)
        publish(ring, start, start + free)
        start += free
        loop.work()
    loop.handle(messages.FinishEpisode(take=TAKE, num_frames=total))
    while loop.writer is not None:
        loop.work()


def encoder_holds(ring: RingWriter) -> int:
    return ring.write_seq - ring.released(ENCODER_READER)


def test_a_behind_encoder_holds_only_frames_not_yet_on_disk(stack, tmp_path):
    """A writer far ahead gets back every slot whose frame is on disk while the encoder still
    has unread frames (it used to release only once it had read the whole ring)."""
    held = probe.frames_held_back(SMALL_AV1)
    capacity = 3 * held + 10
    loop, ring = encoder_on_ring(stack, capacity, tmp_path / "v.mp4")
    publish(ring, 0, capacity)
    loop.encode_available()  # reads all, without the loop's release after it
    durable = loop.writer.durable_frames
    assert durable > 0, "no frame reached the disk: the test shows nothing"
    assert [index for _, _, index in loop.held] == list(range(durable, capacity)), (
        "the encoder still holds frames that are on disk"
    )
    assert ring.released(ENCODER_READER) == durable


def test_a_ring_of_durable_frames_does_not_cut_the_segment(stack, tmp_path):
    """Read to the last slot with most of the ring on disk: release, no flush and reopen."""
    held = probe.frames_held_back(SMALL_AV1)
    capacity = held + KEYFRAME_INTERVAL + 8
    loop, ring = encoder_on_ring(stack, capacity, tmp_path / "v.mp4")
    publish(ring, 0, capacity - 1)
    loop.work()
    assert loop.writer.first_frame == 0, "the segment was cut although frames were on disk"
    feed_and_finish(loop, ring, capacity - 1, 2 * capacity)
    assert_flat_frames(tmp_path / "v.mp4", 2 * capacity)


def test_a_codec_holding_the_whole_ring_cuts_the_segment_and_keeps_every_frame(stack, tmp_path):
    held = probe.frames_held_back(SMALL_AV1)
    capacity = max(4, held // 2)  # the codec holds more than the ring: nothing reaches disk
    loop, ring = encoder_on_ring(stack, capacity, tmp_path / "v.mp4")
    n = 0
    while loop.writer is None or loop.writer.first_frame == 0:
        free = ring.capacity - ring.slots_used()
        publish(ring, n, n + free)
        n += free
        loop.work()
        assert n < 10 * capacity, "the encoder never cut its segment"
    assert encoder_holds(ring) == 0, "the cut segment's frames are on disk: all are released"
    feed_and_finish(loop, ring, n, n + 3)
    assert_flat_frames(tmp_path / "v.mp4", n + 3)
