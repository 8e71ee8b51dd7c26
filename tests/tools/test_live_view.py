"""The live view's key help matches what each key does in the phase on screen."""

from __future__ import annotations

import pytest
from rich.console import Console

from shmpipe.tools.record.figures import CameraFigures, Figures
from shmpipe.tools.record.live_view import render_figures


def screen_text(phase: str) -> str:
    figures = Figures(phase=phase, episode_index=3, episode_number=1, episodes=2, elapsed_s=1.0,
                      remaining_s=4.0, frames=30, late_ticks=0, worst_skew_ms=0.0,
                      cameras={"observation.images.front": CameraFigures(30.0, 30, 30)},
                      status=None, disk_free_bytes=10**9, warnings=[])  # fmt: skip
    screen = Console(record=True, width=160)
    screen.print(render_figures(figures, keys=True))
    return screen.export_text()


def test_while_recording_ctrl_c_discards_only_this_episode():
    text = screen_text("recording")
    assert "→ finish episode" in text and "← re-record" in text and "Esc save and stop" in text
    assert "Ctrl-C stop (this episode is discarded, saved episodes stay)" in text
    assert "nothing saved" not in text


@pytest.mark.parametrize("phase", ["reset", "saving"])
def test_outside_an_episode_the_keys_say_what_they_do_there(phase):
    text = screen_text(phase)
    assert "finish episode" not in text and "re-record" not in text, text
    assert "Esc stop" in text and "Ctrl-C stop (saved episodes stay)" in text
    assert ("→ end the reset" in text) == (phase == "reset")
