"""What `shmpipe record` shows in a terminal: a live view (rich) and the summary per episode.

The live view redraws about 4 times a second from the copy of the figures the recording loop
publishes (`RecordSession.figures`), in rich's own thread: drawing never runs in the loop.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from shmpipe.tools.record.figures import EpisodeSummary, Figures, camera_label, format_bytes

REFRESH_PER_SECOND = 4
KEYS_HINTS = {  # what each key does in each phase (RecordSession._take_key)
    "recording": "→ finish episode   ← re-record   Esc save and stop   "
    "Ctrl-C stop (this episode is discarded, saved episodes stay)",
    "saving": "Esc stop after saving   Ctrl-C stop (saved episodes stay)",
    "reset": "→ end the reset   Esc stop   Ctrl-C stop (saved episodes stay)",
}


class LiveView:
    """A context manager: while open, the terminal's bottom shows `figures()` (None: nothing
    yet); `print` writes above it."""

    def __init__(self, figures: Callable[[], Figures | None], console: Console,
                 keys: bool) -> None:  # fmt: skip
        self._figures, self._keys = figures, keys
        self.console = console
        self._live = Live(console=console, refresh_per_second=REFRESH_PER_SECOND,
                          get_renderable=self._render, transient=True)  # fmt: skip

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._live.stop()

    def _render(self):
        figures = self._figures()
        if figures is None:
            return Text("starting...")
        return render_figures(figures, self._keys)


def render_figures(f: Figures, keys: bool):
    """The live view of one copy of the figures."""
    if f.phase == "reset":
        title = f"[bold yellow]reset[/]: {f.remaining_s:.1f} s left (not recorded)"
    else:
        verb = "saving" if f.phase == "saving" else "[bold red]●[/] recording"
        title = (
            f"{verb} episode {f.episode_index} ({f.episode_number} of {f.episodes}): "
            f"{f.elapsed_s:.1f} s, {f.remaining_s:.1f} s left, {f.frames} frames"
        )
    late = f"[bold red]{f.late_ticks}[/]" if f.late_ticks else "0"
    head = f"late ticks {late}   worst skew {f.worst_skew_ms:.1f} ms   disk free " + (
        format_bytes(f.disk_free_bytes)
    )
    table = Table(box=None, pad_edge=False)
    for column in ("camera", "capture fps", "encode fps", "ring", "backlog", "encoder"):
        table.add_column(column, justify="left" if column in ("camera", "encoder") else "right")
    for name, camera in f.cameras.items():
        status = f.status.cameras.get(name) if f.status else None
        if status is None:
            table.add_row(camera_label(name), f"{camera.capture_fps:.1f}", "", "", "", "")
            continue
        backlog = f"{status.backlog}" + (f" ({status.spilled_frames} spilled)"
                                         if status.spilled_frames else "")  # fmt: skip
        table.add_row(
            camera_label(name),
            f"{camera.capture_fps:.1f}",
            f"{status.encode_fps:.1f}",
            f"{status.slots_used}/{status.slots_total}",
            backlog if not status.backlog else f"[yellow]{backlog}[/]",
            _worker_state(status.alive, status.stalled_s),
        )
    parts = [Text.from_markup(title), Text.from_markup(head), table]
    if f.status is not None and (not f.status.stats.alive or f.status.stats.stalled_s > 0):
        parts.append(Text.from_markup(
            f"stats worker: {_worker_state(f.status.stats.alive, f.status.stats.stalled_s)}"
        ))  # fmt: skip
    parts += [Text(f"WARNING: {w}", style="bold red") for w in f.warnings]
    if keys:
        parts.append(Text(KEYS_HINTS[f.phase], style="dim"))
    return Group(*parts)


def _worker_state(alive: bool, stalled_s: float) -> str:
    if not alive:
        return "[bold red]dead (restarting)[/]"
    if stalled_s > 1.0:
        return f"[bold red]stalled {stalled_s:.1f} s[/]"
    return "ok"


def render_summary(s: EpisodeSummary):
    """The one-screen summary of a saved episode."""
    table = Table(title=f"episode {s.episode_index} saved", title_justify="left", box=None)
    for column in ("camera", "frames", "distinct", "capture fps", "video", "via backlog"):
        table.add_column(column, justify="left" if column == "camera" else "right")
    for name, c in s.cameras.items():
        fps = f"[bold red]{c.capture_fps:.1f}[/]" if c.warning else f"{c.capture_fps:.1f}"
        table.add_row(camera_label(name), str(c.frames), str(c.distinct_frames), fps,
                      format_bytes(c.video_bytes), str(c.overflow))  # fmt: skip
    lines = [
        f"{s.num_frames} frames ({s.num_frames / s.fps:.2f} s at {s.fps} fps) recorded in "
        f"{s.duration_s:.2f} s; finish {s.finish_s:.3f} s; videos {format_bytes(s.video_bytes)}",
        f"late ticks {s.late_ticks}; inter-camera capture skew worst {s.worst_skew_ms:.1f} ms, "
        f"mean {s.mean_skew_ms:.1f} ms"
        + (f"; worker restarts {s.worker_restarts}" if s.worker_restarts else ""),
    ]
    parts = [table, *(Text(line) for line in lines)]
    parts += [Text(f"WARNING: {w}", style="bold red") for w in s.warnings]
    return Group(*parts)
