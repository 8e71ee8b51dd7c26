"""lerobot-record's keys in a plain terminal (no X or Wayland): → next, ← re-record, Esc stop.

`KeyDecoder` turns the bytes a terminal sends into key names; it is pure, so it is tested
without a terminal. `Keyboard` puts stdin in cbreak mode (keys arrive at once, no echo; Ctrl-C
still sends SIGINT), reads it in a thread and always restores the terminal on exit.
"""

from __future__ import annotations

import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable

ESC = b"\x1b"
# arrow keys in normal and in application cursor mode
SEQUENCES = {b"\x1b[C": "next", b"\x1bOC": "next", b"\x1b[D": "rerecord", b"\x1bOD": "rerecord"}
LONE_ESC_S = 0.05  # an ESC with nothing after it for this long is the Esc key


class KeyDecoder:
    """Bytes in, key names out. An ESC starts a sequence; if nothing follows within
    LONE_ESC_S (see `pending_since` and `flush`), it was the Esc key: "stop"."""

    def __init__(self) -> None:
        self._pending = b""
        self.pending_since: float | None = None

    def feed(self, data: bytes, now: float) -> list[str]:
        keys = []
        for byte in data:
            char = bytes([byte])
            if char == ESC:
                if self._pending == ESC:  # a second ESC: the first one was the Esc key
                    keys.append("stop")
                self._pending = b""
            if char == ESC or self._pending:
                self._pending += char
                self.pending_since = now
                keys.extend(self._complete())
        return keys

    def _complete(self) -> list[str]:
        pending = self._pending
        if pending in SEQUENCES:
            self._clear()
            return [SEQUENCES[pending]]
        if (
            len(pending) == 2
            and pending[1:] not in (b"[", b"O")
            or (len(pending) > 2 and 0x40 <= pending[-1] <= 0x7E)
        ):
            self._clear()  # another key's sequence (Alt+x, an arrow up, F1, ...): ignored
        return []

    def flush(self, now: float) -> list[str]:
        """Call when no byte came for a while: "stop" if a lone ESC has waited LONE_ESC_S (an
        unfinished sequence that old is dropped)."""
        since = self.pending_since
        if self._pending and since is not None and now - since >= LONE_ESC_S:
            lone = self._pending == ESC
            self._clear()
            return ["stop"] if lone else []
        return []

    def _clear(self) -> None:
        self._pending, self.pending_since = b"", None


class Keyboard:
    """Reads keys from `fd` (a terminal) in a daemon thread and calls `on_key(name)` for each;
    a context manager: the terminal's settings are restored on exit, whatever the exit."""

    def __init__(self, on_key: Callable[[str], None], fd: int = 0) -> None:
        self._on_key, self._fd = on_key, fd
        self._saved: list | None = None
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None

    @staticmethod
    def usable(fd: int = 0) -> bool:
        """True if `fd` is a terminal (CI and pipes have none)."""
        try:
            return os.isatty(fd)
        except OSError:
            return False

    def __enter__(self) -> Keyboard:
        self._saved = termios.tcgetattr(self._fd)
        self._wake_r, self._wake_w = os.pipe()
        try:
            tty.setcbreak(self._fd, termios.TCSANOW)
            self._thread = threading.Thread(target=self._read, name="shmpipe-keys", daemon=True)
            self._thread.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
            if self._thread is not None:
                self._thread.join(timeout=1.0)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def _read(self) -> None:
        decoder = KeyDecoder()
        while True:
            timeout = LONE_ESC_S if decoder.pending_since is not None else None
            ready, _, _ = select.select([self._fd, self._wake_r], [], [], timeout)
            if self._wake_r in ready:
                return
            keys = decoder.feed(os.read(self._fd, 64), time.monotonic()) if ready else []
            for key in keys + decoder.flush(time.monotonic()):
                self._on_key(key)
