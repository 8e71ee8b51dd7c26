"""The header page of a frame ring (ipc.ring): its geometry, then one section per concern.

- frames: the writer's `write_seq` and high-water mark; per reader `released` (it is done with
  every frame below) and `progress` (frames read). Only these decide who owns a slot.
- health: per reader a heartbeat, bumped every loop, and `flushing` (in a long codec call: not a
  stall). The control process's watchdog reads them; the slot protocol never does.
- sleep: per reader an `asleep` flag; its doorbell is rung only while the flag is set.
Each section gives every reader its own 64-byte cache line, so a reader's heartbeat (every loop)
never dirties the line the writer reads for each frame. A ring is made for a number of readers
(at most MAX_READERS), kept in the geometry. Every word is an aligned int64.
"""

from __future__ import annotations

MAGIC = 0x73686D7069706533  # "shmpipe3": sections apart, N readers
HEADER_BYTES = 4096
LINE = 8  # int64 words per 64-byte cache line
# line 0, the geometry, written once by the creator
W_MAGIC, W_CAPACITY, W_HEIGHT, W_WIDTH, W_CHANNELS, W_SLOT_BYTES, W_ITEMSIZE, W_READERS = range(8)
# line 1, the writer's side of the frames section
W_WRITE_SEQ, W_HIGH_WATER = LINE, LINE + 1
MAX_READERS = (HEADER_BYTES // (LINE * 8) - 2) // 3
_FRAMES, _HEALTH, _SLEEP = 2, 2 + MAX_READERS, 2 + 2 * MAX_READERS  # each section's first line


def released(reader: int) -> int:
    """Word of `reader`'s released count (frames section)."""
    return (_FRAMES + reader) * LINE


def progress(reader: int) -> int:
    """Word of `reader`'s progress, beside its released count (both written by the reader)."""
    return released(reader) + 1


def released_words(readers: int) -> slice:
    """Every reader's released word, as a strided slice of the header's words."""
    return slice(released(0), released(readers), LINE)


def heartbeat(reader: int) -> int:
    """Word of `reader`'s heartbeat count (health section)."""
    return (_HEALTH + reader) * LINE


def flushing(reader: int) -> int:
    """Word of `reader`'s flushing flag, beside its heartbeat."""
    return heartbeat(reader) + 1


def asleep(reader: int) -> int:
    """Word of `reader`'s sleep flag (sleep section): set by the reader, cleared by who rings."""
    return (_SLEEP + reader) * LINE


def check_readers(readers: int) -> int:
    if not 1 <= readers <= MAX_READERS:
        raise ValueError(f"a ring has 1 to {MAX_READERS} readers, got {readers}")
    return readers
