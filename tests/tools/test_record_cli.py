"""`shmpipe record`: the command end to end (subprocesses on synthetic sources), the session's
figures and key handling (RecordSession with scripted sources), and the terminal's key bytes."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest
from rich.console import Console

from shmpipe import Pipeline
from shmpipe.ipc import names
from shmpipe.tools.arguments import EXIT_BAD_ARGUMENTS, EXIT_INTERRUPTED, EXIT_OK
from shmpipe.tools.cli import main
from shmpipe.tools.record.figures import CameraTrack, repeats_warning
from shmpipe.tools.record.keyboard import KeyDecoder
from shmpipe.tools.record.live_view import render_figures, render_summary
from shmpipe.tools.record.session import Pacer, Plan, RecordSession
from tests.helpers.episodes import episode_files
from tests.helpers.paths import REPO
from tests.helpers.processes import OUR_CONTROL_PROCESSES

SMALL = "synthetic:48x64"
QUIET = ["--no-keyboard", "--no-live"]
# Runs the command with one more source kind, "halfrate:<spec>": the source's frames, each
# delivered twice (a 15 fps camera in a 30 fps recording).
HALF_RATE_CHILD = """
import sys
import shmpipe.tools.sources as sources
from shmpipe.tools.cli import main

class HalfRate:
    def __init__(self, inner):
        self.inner, self.shape = inner, inner.shape
    def read_into(self, out):
        capture = self.inner.read_into(out)
        return sources.Capture(capture.time, capture.sequence // 2)
    def describe(self):
        return self.inner.describe() + " at half rate"
    def close(self):
        self.inner.close()

real_open = sources.open_source
def open_source(spec, fps, size=None):
    if spec.startswith("halfrate:"):
        return HalfRate(real_open(spec.removeprefix("halfrate:"), fps, size))
    return real_open(spec, fps, size)

sources.open_source = open_source
sys.exit(main(sys.argv[1:]))
"""


def record_args(root, episodes: int = 2, seconds: float = 1.0, backend="process",
                wrist=SMALL) -> list[str]:  # fmt: skip
    """Two small synthetic cameras at 30 fps. (The thread backend starts in a fraction of the
    time: used where worker processes are not the point.)"""
    return ["record", "--root", str(root), "--fps", "30", "--camera", f"front={SMALL}",
            "--camera", f"wrist={wrist}", "--task", "pick the cube", "--episodes",
            str(episodes), "--episode-time", str(seconds), "--reset-time", "0", *QUIET,
            "--backend", backend]  # fmt: skip


def shmpipe(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shmpipe", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO, **kwargs)  # fmt: skip


def verified(root, capsys) -> dict:
    """`shmpipe verify --json ROOT` (in this process), which must pass."""
    capsys.readouterr()
    code = main(["verify", str(root), "--json"])
    out = capsys.readouterr().out
    assert code == EXIT_OK, f"verify failed:\n{out}"
    return json.loads(out)


def episode_lengths(root) -> list[int]:
    import pyarrow.parquet as pq

    tables = sorted((root / "meta" / "episodes").rglob("*.parquet"))
    return [n for t in tables for n in pq.read_table(t, columns=["length"])["length"].to_pylist()]


# -- the command ---------------------------------------------------------------------------
def test_record_saves_verified_episodes_and_a_second_run_resumes(tmp_path, capsys):
    root = tmp_path / "ds"
    first = shmpipe(*record_args(root))
    assert first.returncode == EXIT_OK, first.stderr
    summaries = [line for line in first.stdout.splitlines() if line.startswith("episode ")]
    assert len(summaries) == 2, first.stdout
    assert all(" frames " in line and "finish " in line for line in summaries), summaries
    checked = shmpipe("verify", str(root))
    assert checked.returncode == EXIT_OK, checked.stdout
    assert episode_lengths(root) == [30, 30]

    again = shmpipe(*record_args(root, seconds=0.3, backend="thread"))
    assert again.returncode == EXIT_OK, again.stderr
    assert "resuming at episode 2" in again.stdout
    assert [line.split(":")[0] for line in again.stdout.splitlines()
            if line.startswith("episode ")] == ["episode 2", "episode 3"]  # fmt: skip
    assert verified(root, capsys)["episodes"] == 4


def test_bad_camera_syntax_exits_1_naming_the_problem(tmp_path):
    done = shmpipe("record", "--root", str(tmp_path / "ds"), "--camera", "front", "--task", "t")
    assert done.returncode == EXIT_BAD_ARGUMENTS
    assert "--camera" in done.stderr and "NAME=SOURCE" in done.stderr
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--camera", "front=webcam:0", "--task", "t"], "webcam:0"),
        (["--camera", "front=synthetic:48x64"], "--task"),
        (["--camera", f"front={SMALL}", "--task", "t", "--fps", "0"], "--fps"),
        (["--camera", f"front={SMALL}", "--task", "t", "--feature", "state=x"], "--feature"),
        (["--camera", f"a={SMALL}", "--camera", f"a={SMALL}", "--task", "t"], "same name"),
    ],
    ids=["unknown-source-kind", "missing-task", "zero-fps", "bad-feature", "same-camera-twice"],
)
def test_bad_arguments_exit_1_with_a_message(tmp_path, capsys, args, message):
    code = main(["record", "--root", str(tmp_path / "ds"), *QUIET, *args])
    assert code == EXIT_BAD_ARGUMENTS
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_settings_that_do_not_match_the_dataset_exit_1(tmp_path, capsys):
    root = tmp_path / "ds"
    with Pipeline(root, fps=30, cameras={"observation.images.front": (48, 64, 3)},
                  backend="thread") as pipe:  # fmt: skip
        pipe.add_frame({"observation.images.front": np.zeros((48, 64, 3), np.uint8)}, task="t")
        pipe.finish_episode()
    code = main(["record", "--root", str(root), "--camera", "front=synthetic:48x32",
                 "--task", "t", *QUIET])  # fmt: skip
    assert code == EXIT_BAD_ARGUMENTS
    assert "observation.images.front" in capsys.readouterr().err


def test_a_missing_video_file_is_a_bad_argument_found_before_recording(tmp_path, capsys):
    gone = tmp_path / "gone.mp4"
    code = main(["record", "--root", str(tmp_path / "ds"), "--camera", f"front={SMALL}",
                 "--camera", f"wrist=file:{gone}", "--task", "t", *QUIET])  # fmt: skip
    assert code == EXIT_BAD_ARGUMENTS
    assert "gone.mp4" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_ctrl_c_discards_the_open_episode_and_exits_within_a_second(tmp_path, capsys):
    root = tmp_path / "ds"
    args = record_args(root, episodes=3, seconds=0.5)
    child = subprocess.Popen([sys.executable, "-m", "shmpipe", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=REPO)  # fmt: skip
    OUR_CONTROL_PROCESSES.add(child.pid)
    try:
        for line in child.stdout:
            if line.startswith("episode 0:"):
                break
        time.sleep(0.25)  # half way through episode 1
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        child.kill()
        child.communicate()
    assert code == EXIT_INTERRUPTED
    assert took < 1.0, f"exit took {took:.2f} s after Ctrl-C"
    assert verified(root, capsys)["episodes"] == 1
    assert all("file-000" in f for f in episode_files(root)), episode_files(root)
    left = [e for e in names.list_objects() if names.owner_pid(e) == child.pid]
    assert left == [], f"the recorder left shared memory behind: {left}"


def test_a_camera_with_repeated_frames_is_warned_about_by_name(tmp_path):
    args = record_args(tmp_path / "ds", episodes=1, backend="thread", wrist=f"halfrate:{SMALL}")
    done = subprocess.run([sys.executable, "-c", HALF_RATE_CHILD, *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert done.returncode == EXIT_OK, done.stderr
    # a busy machine may add other warnings (a loop running late): only wrist repeats frames
    warnings = [line for line in done.stdout.splitlines()
                if line.startswith("WARNING") and "distinct frames/s" in line]  # fmt: skip
    assert len(warnings) == 1, done.stdout
    assert "camera wrist delivered 15.0 distinct frames/s" in warnings[0]
    assert "stamped at 30 fps: 50 % of its frames are repeats" in warnings[0]


def test_right_arrow_in_a_terminal_ends_the_episode_early(tmp_path):
    root = tmp_path / "ds"
    args = record_args(root, episodes=1, seconds=30, backend="thread")
    args.remove("--no-keyboard")
    master, terminal = pty.openpty()
    child = subprocess.Popen([sys.executable, "-m", "shmpipe", *args], stdin=terminal,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=REPO)  # fmt: skip
    os.close(terminal)
    OUR_CONTROL_PROCESSES.add(child.pid)
    try:
        for line in child.stdout:
            if line.startswith("recording"):
                break
        time.sleep(0.7)
        os.write(master, b"\x1b[C")
        code = child.wait(timeout=10)
        out = child.stdout.read()
    finally:
        child.kill()
        child.communicate()
        os.close(master)
    assert code == EXIT_OK, out
    lengths = episode_lengths(root)
    assert len(lengths) == 1 and 5 <= lengths[0] < 100, f"→ did not end the episode: {lengths}"


# -- the session: figures and keys ---------------------------------------------------------
@dataclass
class Captured:
    time: float
    sequence: int


class ScriptedSource:
    """Frame k has sequence `sequence(k)` and capture time `time(k)`; `on_read(k)` runs first
    (to press keys or raise at a chosen frame)."""

    def __init__(self, sequence=lambda k: k, time=lambda k: k / 100, on_read=None):
        self.shape = (16, 16, 3)
        self.reads = 0
        self._sequence, self._time, self._on_read = sequence, time, on_read

    def read_into(self, out):
        k, self.reads = self.reads, self.reads + 1
        if self._on_read is not None:
            self._on_read(k)
        out[...] = k % 256
        return Captured(self._time(k), self._sequence(k))

    def close(self):
        pass


def session_with(tmp_path, sources, episodes=1, frames=10, reset_s=0.0):
    cameras = {key: (16, 16, 3) for key in sources}
    pipe = Pipeline(tmp_path / "ds", fps=100, cameras=cameras, features={"action": (2,)},
                    backend="thread").start()  # fmt: skip
    plan = Plan(fps=100, task="t", episodes=episodes, episode_time_s=frames / 100,
                reset_time_s=reset_s, features={"action": (2,)})  # fmt: skip
    events = []
    return pipe, RecordSession(pipe, sources, plan, on_event=events.append), events


def test_distinct_frames_skew_and_the_summary_per_camera(tmp_path):
    skewed = {4: 0.020}  # at tick 4 the wrist camera's frame is 20 ms older
    sources = {
        "observation.images.front": ScriptedSource(),
        "observation.images.wrist": ScriptedSource(
            sequence=lambda k: k // 2, time=lambda k: k / 100 - 0.003 - skewed.get(k, 0.0)
        ),
    }
    pipe, session, _ = session_with(tmp_path, sources)
    with pipe:
        result = session.run()
    (summary,) = result.saved
    front, wrist = summary.cameras.values()
    assert summary.num_frames == 10 and front.frames == wrist.frames == 10
    assert (front.distinct_frames, wrist.distinct_frames) == (10, 5)
    assert (front.capture_fps, wrist.capture_fps) == (100.0, 50.0)
    assert summary.worst_skew_ms == pytest.approx(23.0, abs=1e-6)
    assert summary.mean_skew_ms == pytest.approx(5.0, abs=1e-6)
    assert front.warning is None and wrist.warning is not None
    assert wrist.warning.startswith("camera wrist delivered 50.0 distinct frames/s")
    assert front.video_bytes > 0 and summary.finish_s > 0
    assert session.figures is not None and session.figures.phase == "saving"
    screen = Console(record=True, width=120)
    screen.print(render_figures(session.figures, keys=True))
    screen.print(render_summary(summary))
    text = screen.export_text()
    assert "saving episode 0" in text and "wrist" in text and "Esc" in text
    assert "WARNING: camera wrist" in text


def test_repeats_up_to_five_percent_are_tolerated():
    def track(frames, distinct):
        t = CameraTrack()
        for k in range(frames):
            t.see(min(k, distinct - 1))
        return t

    assert repeats_warning("front", track(100, 96), 30) is None
    warning = repeats_warning("observation.images.front", track(100, 94), 30)
    assert warning is not None and "camera front delivered 28.2 distinct frames/s" in warning


def test_next_ends_an_episode_early_and_stop_saves_it_then_stops(tmp_path):
    session = None

    def keys(k):
        # a key pressed while frame k is captured takes effect after that frame
        if k == 2:
            session.press("next")  # episode 0: frames 0..2
        if k == 7:
            session.press("stop")  # episode 1: frames 3..7, saved, then no more

    pipe, session, _ = session_with(tmp_path, {"cam": ScriptedSource(on_read=keys)}, episodes=4)
    with pipe:
        result = session.run()
    assert [s.num_frames for s in result.saved] == [3, 5]
    assert result.stopped_early


def test_rerecord_cancels_the_episode_and_records_the_same_index_again(tmp_path):
    session = None

    def keys(k):
        if k == 3:
            session.press("rerecord")  # after frames 0..3

    pipe, session, events = session_with(tmp_path, {"cam": ScriptedSource(on_read=keys)})
    with pipe:
        result = session.run()
    (summary,) = result.saved
    assert summary.episode_index == 0 and summary.num_frames == 10
    assert [type(e).__name__ for e in events] == ["SessionStarted", "EpisodeCancelled",
                                                  "EpisodeSaved"]  # fmt: skip
    assert events[1].episode_index == 0 and events[1].frames == 4


def test_keys_in_the_reset_end_it_early_ignore_rerecord_and_stop(tmp_path):
    session = None

    def keys(k):  # episode 0 is frames 0..9, then the reset streams
        if k == 12:
            session.press("rerecord")  # the episode is already saved: ignored
            session.press("next")  # ends the reset: episode 1 is frames 13..22
        if k == 25:
            session.press("stop")

    pipe, session, events = session_with(tmp_path, {"cam": ScriptedSource(on_read=keys)},
                                         episodes=3, reset_s=5.0)  # fmt: skip
    started = time.monotonic()
    with pipe:
        result = session.run()
    assert time.monotonic() - started < 3.0, "the resets were not ended early"
    assert [s.num_frames for s in result.saved] == [10, 10] and result.stopped_early
    assert any(type(e).__name__ == "Notice" and "ignored" in e.text for e in events)


def test_ctrl_c_cancels_the_open_episode(tmp_path):
    def interrupt(k):
        if k == 15:  # in the second episode
            raise KeyboardInterrupt

    pipe, session, _ = session_with(tmp_path, {"cam": ScriptedSource(on_read=interrupt)},
                                    episodes=2)  # fmt: skip
    with pipe:
        with pytest.raises(KeyboardInterrupt):
            session.run()
        assert pipe.status().episode_index is None, "the interrupted episode is still open"
        assert pipe.next_episode_index == 1
    assert all("file-000" in f for f in episode_files(tmp_path / "ds"))


def test_pacer_counts_a_tick_more_than_a_period_late_and_does_not_rush():
    now = [0.0]
    pacer = Pacer(10, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    starts = []
    for delay in (0, 0, 0.25, 0, 0.05, 0):  # work done before the next wait
        now[0] += delay
        pacer.wait()
        starts.append(round(now[0], 3))
    assert pacer.late_ticks == 1
    # due at 0, 0.1, 0.2 (starts at 0.35: late, the schedule restarts there), 0.45, 0.55
    # (its wait starts at 0.5: on time), 0.65
    assert starts == [0.0, 0.1, 0.35, 0.45, 0.55, 0.65]


# -- keys ----------------------------------------------------------------------------------
def test_key_decoder_reads_arrows_and_a_lone_escape():
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1b[C", 0.0) == ["next"]
    assert decoder.feed(b"\x1b[D", 0.0) == ["rerecord"]
    assert decoder.feed(b"\x1bOC", 0.0) == ["next"]  # application cursor mode
    assert decoder.feed(b"\x1b", 1.0) == [] and decoder.flush(1.01) == []
    assert decoder.flush(1.06) == ["stop"]


def test_key_decoder_splits_bytes_and_ignores_other_keys():
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1b", 0.0) + decoder.feed(b"[", 0.01) + decoder.feed(b"C", 0.02) == [
        "next"
    ]
    assert decoder.feed(b"q\x1b[A\x1b[1;5C \x1bx", 0.0) == []  # letters, ↑, ctrl-→, alt-x
    assert decoder.feed(b"\x1b\x1b[D", 0.0) == ["stop", "rerecord"]  # Esc, then ←
    assert decoder.flush(10.0) == []


def test_record_help_names_sources_keys_and_exit_codes(capsys):
    assert main(["record", "--help"]) == EXIT_OK
    text = capsys.readouterr().out
    for words in ("--camera NAME=SOURCE", "opencv:0", "file:clip.mp4", "zeros", "Esc", "130"):
        assert words in text, f"--help does not mention {words!r}"


def test_display_save_writes_every_camera_and_feature_to_a_rerun_file(tmp_path, capsys):
    pytest.importorskip("rerun")
    from tests.helpers.rerun_file import read_rrd

    root, path = tmp_path / "ds", tmp_path / "preview.rrd"
    args = record_args(root, episodes=1, seconds=0.5, backend="thread")
    code = main([*args, "--feature", "observation.state=3", "--display-save", str(path)])
    assert code == EXIT_OK, capsys.readouterr().err
    assert episode_lengths(root) == [15]
    logged = read_rrd(path)
    for entity in ("/observation.images.front", "/observation.images.wrist"):
        assert logged.get(entity), f"{entity}: no picture in {sorted(logged)}"
        assert logged[entity][0][1].shape == (48, 64, 3)
    assert all((values == 0).all() for _, values in logged["/observation.state"])


def test_display_options_that_conflict_exit_1(tmp_path, capsys):
    args = record_args(tmp_path / "ds", episodes=1, seconds=0.2, backend="thread")
    code = main([*args, "--display-save", str(tmp_path / "p.rrd"), "--display-ip", "10.0.0.2"])
    assert code == EXIT_BAD_ARGUMENTS
    assert "--display-save and --display-ip" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_display_without_rerun_exits_1_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "rerun", None)  # as if rerun-sdk were not installed
    args = record_args(tmp_path / "ds", episodes=1, seconds=0.2, backend="thread")
    assert main([*args, "--display"]) == EXIT_BAD_ARGUMENTS
    assert "pip install 'shmpipe[preview]'" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_a_closed_stdout_does_not_stop_the_recording(tmp_path, capsys):
    """`shmpipe record ... | head -1`: the log's reader goes away, the recording goes on."""
    root = tmp_path / "ds"
    child = subprocess.Popen([sys.executable, "-m", "shmpipe", *record_args(root, episodes=4,
                              seconds=0.3, backend="thread")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip
    OUR_CONTROL_PROCESSES.add(child.pid)
    try:
        child.stdout.readline()
        child.stdout.close()  # as head -1 does once it has its line
        code = child.wait(timeout=60)
        errors = child.stderr.read()
    finally:
        child.kill()
    assert code == EXIT_OK, errors
    assert verified(root, capsys)["episodes"] == 4
