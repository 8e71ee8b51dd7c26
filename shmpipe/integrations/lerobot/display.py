"""`--display_data=true` of lerobot-record, shown through shmpipe's preview while shmpipe records.

LeRobot's loop logs every observation and action to Rerun itself (`log_visualization_data`, 0.4's
`log_rerun_data`): converting and sending each camera image costs the loop milliseconds per
frame. While the drop-in is installed, the names lerobot-record calls are replaced in its module
(only there): initialising the view records where LeRobot would show it (a viewer spawned here,
or `--display_ip`/`--display_port`'s, as LeRobot connects to it), and every dataset the stand-in
makes gets a PreviewConfig for it. shmpipe's preview worker then reads the cameras from the rings
and the numeric features from the row add_frame publishes, downsampled and at 10 pictures a
second, outside the loop; the loop's per-frame call does nothing. Shown: every camera and numeric
feature of the frames being recorded; not shown: the reset phase between episodes (nothing is
recorded then). `--display_mode=foxglove` (0.6) stays LeRobot's own.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

from shmpipe.recorder.preview import PreviewConfig

log = logging.getLogger("shmpipe.integrations.lerobot")
INIT_NAMES = ("init_visualization", "init_rerun")  # LeRobot >= 0.5, 0.4.x
LOG_NAMES = ("log_visualization_data", "log_rerun_data")
SHUTDOWN_NAMES = ("shutdown_visualization",)
REMOTE_JPEG_QUALITY = 90  # LeRobot sends JPEG to a remote viewer too


class DisplayRedirect:
    """Replaces lerobot-record's display calls in `module` until undo(); `preview` is the
    PreviewConfig for the datasets made after `--display_data` initialised the view (else None)."""

    def __init__(self, module: ModuleType) -> None:
        self.module, self.preview = module, None
        self._own: dict[str, object] = {}  # LeRobot's functions that were replaced
        self._lerobots = False  # a display mode shmpipe does not show: LeRobot's own calls
        replacements = {**dict.fromkeys(INIT_NAMES, self._init),
                        **dict.fromkeys(LOG_NAMES, self._log),
                        **dict.fromkeys(SHUTDOWN_NAMES, self._shutdown)}  # fmt: skip
        for name, replacement in replacements.items():
            if hasattr(module, name):
                current = getattr(module, name)
                earlier = getattr(current, "__self__", None)  # installed before: LeRobot's
                own = earlier._own[name] if isinstance(earlier, DisplayRedirect) else current
                self._own[name] = own
                setattr(module, name, replacement)

    def undo(self) -> None:
        """Put LeRobot's functions back (those still ours); idempotent."""
        for name, original in self._own.items():
            if getattr(self.module, name, None) in (self._init, self._log, self._shutdown):
                setattr(self.module, name, original)

    def _call_own(self, names: tuple[str, ...], *args, **kwargs) -> None:
        own = next(self._own[n] for n in names if n in self._own)
        own(*args, **kwargs)  # type: ignore[operator]

    def _init(self, *args, session_name: str = "recording", ip: str | None = None,
              port: int | None = None, **kwargs) -> None:  # fmt: skip
        """LeRobot 0.5+: init_visualization(display_mode, *, session_name, ip, port);
        0.4: init_rerun(session_name=, ip=, port=)."""
        mode = args[0] if args else kwargs.pop("display_mode", "rerun")
        if mode != "rerun":
            self._lerobots = True
            self._call_own(INIT_NAMES, *args, session_name=session_name, ip=ip, port=port,
                           **kwargs)  # fmt: skip
            return
        memory = os.getenv("LEROBOT_RERUN_MEMORY_LIMIT", "10%")  # LeRobot's variable
        if ip and port:
            self.preview = PreviewConfig("connect", address=f"rerun+http://{ip}:{port}/proxy",
                                         jpeg_quality=REMOTE_JPEG_QUALITY,
                                         application_id=session_name)  # fmt: skip
        else:
            self.preview = PreviewConfig("spawn", memory_limit=memory,
                                         application_id=session_name)  # fmt: skip
        where = self.preview.address or "a viewer spawned here"
        log.info("shmpipe: --display_data: the recorded cameras and features are shown "
                 "through shmpipe's preview in Rerun (%s), outside the record loop", where)

    def _log(self, *args, **kwargs) -> None:
        if self._lerobots:
            self._call_own(LOG_NAMES, *args, **kwargs)

    def _shutdown(self, *args, **kwargs) -> None:
        if self._lerobots:  # shmpipe's preview stops with the recorder
            self._call_own(SHUTDOWN_NAMES, *args, **kwargs)
