"""Putting LeRobotRecorder into LeRobot's `lerobot-record`, for whichever LeRobot is installed.

`install()` replaces the name `LeRobotDataset` in the namespace of the module
`lerobot.scripts.lerobot_record` (and only there) with a stand-in class that routes the three
ways record() makes its dataset to LeRobotRecorder:

- `LeRobotDataset.create(repo_id, fps, ...)`      both 0.4.x and main: a new dataset;
- `LeRobotDataset.resume(repo_id, root=..., ...)` main's --resume;
- `LeRobotDataset(repo_id, root=..., ...)`        0.4.x's --resume (the constructor, followed
  by `start_image_writer` and the robot sanity check, which LeRobotRecorder answers).

LeRobot's real class is not touched, so its own classmethods, training and loading in the same
process keep LeRobot's behaviour; any other attribute of the stand-in class is the real one's.
`install()` returns an `Installed` handle: `undo()` (or leaving `with install():`) puts the
original name back. The recorders the stand-in made are in `handle.recorders`.

While installed, LeRobot's advice "Streaming encoding is disabled. If you have capable hardware,
consider enabling it..." is dropped from its log (a filter on the root logger, which its
`logging.info` uses): shmpipe encodes while recording whatever that flag says.
"""

from __future__ import annotations

import contextlib
import logging
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

from shmpipe.integrations.lerobot.display import DisplayRedirect
from shmpipe.integrations.lerobot.recorder import LeRobotRecorder

__all__ = ["Installed", "LeRobotMissing", "install", "lerobot_api"]
log = logging.getLogger("shmpipe.integrations.lerobot")
RECORD_MODULE = "lerobot.scripts.lerobot_record"


class LeRobotMissing(ImportError):
    """LeRobot (or its lerobot-record script) cannot be imported here."""


def lerobot_api(real_class: type) -> str:
    """'main' if the class has main's `resume` classmethod (LeRobot >= 0.5), else '0.4'."""
    return "main" if hasattr(real_class, "resume") else "0.4"


def lerobot_version() -> str:
    try:
        return version("lerobot")
    except PackageNotFoundError:
        return "unknown"


def record_module() -> ModuleType:
    """lerobot.scripts.lerobot_record, imported (else LeRobotMissing, with the reason)."""
    try:
        return import_module(RECORD_MODULE)
    except ImportError as error:
        raise LeRobotMissing(
            f"cannot import {RECORD_MODULE} ({type(error).__name__}: {error}); "
            "install LeRobot in this environment (pip install lerobot)"
        ) from error


class EncodingAdviceFilter(logging.Filter):
    """Drops LeRobot's advice to enable streaming encoding, which does not apply to shmpipe."""

    ADVICE = "Streaming encoding is disabled"

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.ADVICE)


ADVICE_FILTER = EncodingAdviceFilter()


class _ForwardToReal(type):
    """Class attributes the stand-in does not define are LeRobot's real class's."""

    def __getattr__(cls, name: str) -> object:
        return getattr(cls._real, name)


class _StandIn(metaclass=_ForwardToReal):
    _real: type = object
    _recorder: type[LeRobotRecorder] = LeRobotRecorder
    _made: list[LeRobotRecorder] = []
    _display: DisplayRedirect | None = None

    def __new__(cls, repo_id: str, root=None, **options) -> LeRobotRecorder:  # type: ignore[misc]
        """0.4.x's --resume: `LeRobotDataset(repo_id, root=..., ...)` appends to `root`.
        Returns a recorder, not an instance of this class, so no __init__ runs."""
        return cls.resume(repo_id, root=root, **options)

    @classmethod
    def _with_display(cls, options: dict) -> dict:
        """`preview=` for the recorder if --display_data initialised the view (display.py)."""
        preview = cls._display.preview if cls._display is not None else None
        return {"preview": preview, **options} if preview is not None else options

    @classmethod
    def create(cls, repo_id: str, fps: int, **options) -> LeRobotRecorder:
        recorder = cls._recorder.create(repo_id, fps, **cls._with_display(options))
        log.info("shmpipe: recording %s at %s", repo_id, recorder.root)
        cls._made.append(recorder)
        return recorder

    @classmethod
    def resume(cls, repo_id: str, root=None, **options) -> LeRobotRecorder:
        recorder = cls._recorder.resume(repo_id, root=root, **cls._with_display(options))
        log.info("shmpipe: resuming %s at %s (%d episodes there)", repo_id, recorder.root,
                 recorder.num_episodes)  # fmt: skip
        cls._made.append(recorder)
        return recorder


class Installed(contextlib.AbstractContextManager):
    """What install() did: `undo()` restores LeRobot's own LeRobotDataset in the module."""

    def __init__(self, module: ModuleType, original: type, stand_in: type,
                 display: DisplayRedirect) -> None:  # fmt: skip
        self.module, self.original, self.stand_in = module, original, stand_in
        self.display = display
        logging.getLogger().addFilter(ADVICE_FILTER)  # once, however often installed
        self.api, self.lerobot_version = lerobot_api(original), lerobot_version()
        self.recorders: list[LeRobotRecorder] = stand_in._made

    @property
    def active(self) -> bool:
        return self.module.LeRobotDataset is self.stand_in

    def undo(self) -> None:
        """Put LeRobot's class back (only if the name is still ours); idempotent."""
        if self.active:
            self.module.LeRobotDataset = self.original
        self.display.undo()
        logging.getLogger().removeFilter(ADVICE_FILTER)

    def __exit__(self, *exc_info) -> None:  # `with install():` undoes it at the end
        self.undo()

    def __repr__(self) -> str:
        return (f"Installed(lerobot {self.lerobot_version}, {self.api} API, "
                f"active={self.active}, recorders={len(self.recorders)})")  # fmt: skip


def install(recorder_class: type[LeRobotRecorder] = LeRobotRecorder) -> Installed:
    """Make lerobot-record's `record()` record through shmpipe (create and resume), in this
    process, until `undo()`. Installing again first undoes the previous install.
    LeRobotMissing (an ImportError) if LeRobot is not importable."""
    module = record_module()
    current = module.LeRobotDataset
    original = current._real if isinstance(current, _ForwardToReal) else current
    stand_in = _ForwardToReal("LeRobotDataset", (_StandIn,), {
        "_real": original, "_recorder": recorder_class, "_made": [],
        "__module__": __name__, "__doc__": "shmpipe's stand-in for LeRobotDataset (swap.py)",
    })  # fmt: skip
    module.LeRobotDataset = stand_in
    stand_in._display = DisplayRedirect(module)
    handle = Installed(module, original, stand_in, stand_in._display)
    log.info("shmpipe: lerobot-record records through shmpipe (lerobot %s, %s API)",
             handle.lerobot_version, handle.api)  # fmt: skip
    return handle
