"""Putting LeRobotRecorder into LeRobot's `lerobot-record` and `lerobot-rollout`, for whichever
LeRobot is installed: the one place that decides how shmpipe patches LeRobot.

`install()` replaces the name `LeRobotDataset` in the namespace of the modules that make
LeRobot's recording datasets (and only there) with a stand-in class that routes the three ways
they make their dataset to LeRobotRecorder:

- `lerobot.scripts.lerobot_record` (every release): record();
- `lerobot.rollout.context` (LeRobot 0.6+, where present): build_rollout_context(), which makes
  the dataset of lerobot-rollout's four strategies (episodic, sentry, highlight, dagger); it
  looks `LeRobotDataset` up in its module globals at call time, so the swap reaches it.

and, on LeRobot 0.6+, the name `RolloutRingBuffer` in `lerobot.rollout.strategies.highlight`
(looked up by HighlightStrategy.setup()) with `rolling_ring`: the highlight strategy's pre-roll
is then the recorder's rolling capture, not raw frames in RAM (shmpipe.integrations.lerobot.
highlight says why and how).

The three calls:

- `LeRobotDataset.create(repo_id, fps, ...)`      both 0.4.x and main: a new dataset;
- `LeRobotDataset.resume(repo_id, root=..., ...)` main's --resume (record and rollout);
- `LeRobotDataset(repo_id, root=..., ...)`        0.4.x's --resume (the constructor, followed
  by `start_image_writer` and the robot sanity check, which LeRobotRecorder answers).

LeRobot's real class is not touched, so its own classmethods, training and loading in the same
process keep LeRobot's behaviour; any other attribute of the stand-in class is the real one's.
`install()` returns an `Installed` handle: `undo()` (or leaving `with install():`) puts the
original names back. The recorders the stand-in made are in `handle.recorders`.

While installed, LeRobot's advice "Streaming encoding is disabled. If you have capable hardware,
consider enabling it..." is dropped from its log (a filter on the root logger, which its
`logging.info` uses): shmpipe encodes while recording whatever that flag says.
"""

from __future__ import annotations

import contextlib
import logging
from functools import partial
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

from shmpipe.integrations.lerobot.display import DisplayRedirect
from shmpipe.integrations.lerobot.highlight import rolling_ring
from shmpipe.integrations.lerobot.recorder import LeRobotRecorder

__all__ = ["Installed", "LeRobotMissing", "install", "lerobot_api"]
log = logging.getLogger("shmpipe.integrations.lerobot")
RECORD_MODULE = "lerobot.scripts.lerobot_record"
ROLLOUT_MODULE = "lerobot.rollout.context"  # LeRobot 0.6+: lerobot-rollout's dataset
HIGHLIGHT_MODULE = "lerobot.rollout.strategies.highlight"  # 0.6+: its RolloutRingBuffer


class LeRobotMissing(ImportError):
    """LeRobot (or the script asked for: lerobot-record, lerobot-rollout) cannot be imported
    here."""


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


def dataset_modules() -> list[ModuleType]:
    """The modules whose `LeRobotDataset` makes a recording dataset: lerobot-record's (required,
    else LeRobotMissing) and lerobot-rollout's context where this LeRobot has one (0.6+)."""
    modules = [record_module()]
    try:
        modules.append(import_module(ROLLOUT_MODULE))
    except ImportError as error:  # LeRobot < 0.6: no lerobot-rollout
        log.debug("shmpipe: no %s here (%s): only lerobot-record is routed", ROLLOUT_MODULE,
                  error)  # fmt: skip
    return modules


def highlight_module() -> ModuleType | None:
    """The highlight strategy's module, if this LeRobot has one (0.6+) with a ring to swap."""
    try:
        module = import_module(HIGHLIGHT_MODULE)
    except ImportError:
        return None
    return module if hasattr(module, "RolloutRingBuffer") else None


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
    """What install() did: `undo()` restores LeRobot's own LeRobotDataset in every module it
    replaced it in (`modules`: lerobot-record's first, then lerobot-rollout's if present)."""

    def __init__(self, originals: dict[ModuleType, type], stand_in: type,
                 display: DisplayRedirect, ring: tuple | None = None) -> None:  # fmt: skip
        self.originals, self.stand_in, self.display = originals, stand_in, display
        self.ring = ring  # (highlight's module, LeRobot's RolloutRingBuffer, rolling_ring)
        self.modules = list(originals)
        self.module, self.original = self.modules[0], originals[self.modules[0]]  # record's
        logging.getLogger().addFilter(ADVICE_FILTER)  # once, however often installed
        self.api, self.lerobot_version = lerobot_api(self.original), lerobot_version()
        self.recorders: list[LeRobotRecorder] = stand_in._made

    @property
    def rollout(self) -> bool:
        """Whether lerobot-rollout (LeRobot 0.6+) records through shmpipe too."""
        return any(m.__name__ == ROLLOUT_MODULE for m in self.modules)

    @property
    def active(self) -> bool:
        return all(m.LeRobotDataset is self.stand_in for m in self.modules)

    def undo(self) -> None:
        """Put LeRobot's class back (where the name is still ours); idempotent."""
        for module, original in self.originals.items():
            if module.LeRobotDataset is self.stand_in:
                module.LeRobotDataset = original
        if self.ring is not None and self.ring[0].RolloutRingBuffer is self.ring[2]:
            self.ring[0].RolloutRingBuffer = self.ring[1]
        self.display.undo()
        logging.getLogger().removeFilter(ADVICE_FILTER)

    def __exit__(self, *exc_info) -> None:  # `with install():` undoes it at the end
        self.undo()

    def __repr__(self) -> str:
        return (f"Installed(lerobot {self.lerobot_version}, {self.api} API, "
                f"rollout={self.rollout}, active={self.active}, "
                f"recorders={len(self.recorders)})")  # fmt: skip


def swap_ring(made: list[LeRobotRecorder]) -> tuple | None:
    """Put `rolling_ring` (bound to the recorders the stand-in makes) in place of highlight's
    RolloutRingBuffer; (module, LeRobot's class, ours) for undo, or None without one."""
    module = highlight_module()
    if module is None:
        return None
    real = module.RolloutRingBuffer
    if isinstance(real, partial) and real.func is rolling_ring:  # installed before
        real = real.args[1]
    module.RolloutRingBuffer = ours = partial(rolling_ring, made, real)
    return module, real, ours


def install(recorder_class: type[LeRobotRecorder] = LeRobotRecorder) -> Installed:
    """Make lerobot-record's `record()` and, on LeRobot 0.6+, lerobot-rollout's
    `build_rollout_context()` record through shmpipe (create and resume), in this process,
    until `undo()`. Installing again first undoes the previous install.
    LeRobotMissing (an ImportError) if LeRobot is not importable."""
    modules = dataset_modules()
    originals = {}
    for module in modules:
        current = module.LeRobotDataset
        originals[module] = current._real if isinstance(current, _ForwardToReal) else current
    stand_in = _ForwardToReal("LeRobotDataset", (_StandIn,), {
        "_real": originals[modules[0]], "_recorder": recorder_class, "_made": [],
        "__module__": __name__, "__doc__": "shmpipe's stand-in for LeRobotDataset (swap.py)",
    })  # fmt: skip
    for module in modules:
        module.LeRobotDataset = stand_in
    stand_in._display = DisplayRedirect(modules[0])
    handle = Installed(originals, stand_in, stand_in._display, swap_ring(stand_in._made))
    log.info("shmpipe: %s record through shmpipe (lerobot %s, %s API)",
             "lerobot-record and lerobot-rollout" if handle.rollout else "lerobot-record",
             handle.lerobot_version, handle.api)  # fmt: skip
    return handle
