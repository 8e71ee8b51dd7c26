"""shmpipe's exceptions: one family, each also a ValueError or RuntimeError as before.

Callers that caught ValueError (bad settings, bad frames) or RuntimeError (a worker or the disk
failed, a call in the wrong state) keep working; new code can catch `ShmpipeError` or a subclass.
"""

from __future__ import annotations


class ShmpipeError(Exception):
    """Base of every error shmpipe raises on purpose."""


class ConfigError(ShmpipeError, ValueError):
    """A setting (Pipeline argument, dataset on disk, encoder option) cannot be used."""


class FrameError(ShmpipeError, ValueError):
    """A frame given to add_frame is not what the pipeline was set up for; nothing was added."""


class UsageError(ShmpipeError, RuntimeError):
    """A call in the wrong state (before start, after close), from two threads, or after fork."""


class WorkerError(ShmpipeError, RuntimeError):
    """An encoder or stats worker failed the episode, or could not be started."""


class SharedMemoryError(ShmpipeError, RuntimeError):
    """/dev/shm has too little room for the rings; says how much is needed and how to get it."""


class DatasetError(ShmpipeError, RuntimeError):
    """Writing the dataset failed (disk full, permissions); names the file."""


class RingFullError(ShmpipeError, RuntimeError):
    """A full ring refused a frame under overflow='error'; the frame was not added."""


class SourceError(ShmpipeError, RuntimeError):
    """A camera source failed: the device is gone or stopped delivering, the file is unreadable."""
