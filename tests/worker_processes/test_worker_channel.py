"""A worker's look at its control channel (WorkerLoop.pending / messages_waiting): every message
sent is read once, in order, nothing is seen when nothing was sent, and the owner's end closing
is seen at once (as a waiting message, and as OwnerGone when read)."""

from __future__ import annotations

import socket

import pytest
from multiprocess.connection import Connection

from shmpipe import messages
from workers.base import OwnerGone, WorkerLoop


@pytest.fixture
def channel():
    ours, theirs = socket.socketpair()
    owner, worker = Connection(ours.detach()), Connection(theirs.detach())
    yield owner, WorkerLoop(worker, doorbell=None, readers=[])
    for conn in (owner, worker):
        conn.close()


def test_messages_are_read_once_in_order_and_only_once_sent(channel):
    owner, loop = channel
    assert not loop.messages_waiting()
    assert loop.pending() == []
    sent = [messages.FinishEpisode(take=3, num_frames=10), messages.CancelEpisode(take=4)]
    for message in sent:
        owner.send_bytes(messages.encode(message))
    assert loop.messages_waiting()
    assert loop.pending() == sent
    assert not loop.messages_waiting()
    assert loop.pending() == []


def test_the_owners_end_closing_is_seen_as_a_waiting_message_and_raises_owner_gone(channel):
    owner, loop = channel
    owner.send_bytes(messages.encode(messages.CancelEpisode(take=1)))
    owner.close()
    assert loop.messages_waiting()
    with pytest.raises(OwnerGone):
        loop.pending()  # the message before the end is read first, then the end


def test_a_closed_channel_counts_as_a_waiting_message_and_raises_owner_gone(channel):
    _, loop = channel
    loop._conn.close()
    assert loop.messages_waiting()
    with pytest.raises(OwnerGone):
        loop.pending()
