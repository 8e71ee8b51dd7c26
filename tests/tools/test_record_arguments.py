"""`shmpipe record`'s arguments as a newcomer meets them: a camera or folder that cannot be used
is exit code 1 with a message naming it, before anything is recorded or written (and without
OpenCV's own log lines); features can name their entries; the help says what each option is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shmpipe.tools.arguments import EXIT_BAD_ARGUMENTS, EXIT_OK
from shmpipe.tools.cli import main
from tests.helpers.paths import REPO

SMALL = "synthetic:48x64"
QUIET = ["--no-keyboard", "--no-live"]


def record(root, *args: str) -> list[str]:
    return ["record", "--root", str(root), "--task", "t", "--episode-time", "0.2",
            "--reset-time", "0", "--backend", "thread", *QUIET, *args]  # fmt: skip


@pytest.mark.parametrize("source", ["opencv:7", "opencv:/dev/video97", "file:/nope.mp4"])
def test_a_camera_that_does_not_exist_exits_1_naming_it_without_opencv_log_lines(
    tmp_path, source
):
    if source.startswith("opencv:"):
        pytest.importorskip("cv2")
    done = subprocess.run([sys.executable, "-m", "shmpipe", *record(tmp_path / "ds", "--camera",
                           f"front={SMALL}", "--camera", f"wrist={source}")],
                          capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert done.returncode == EXIT_BAD_ARGUMENTS, done.stderr
    lines = done.stderr.splitlines()  # our one line; none of OpenCV's [ WARN:0@...] lines
    assert len(lines) == 1 and lines[0].startswith(f"shmpipe record: error: {source}: "), lines
    assert done.stdout == "" and not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("/proc/shmpipe-nope", "no folder can be made in /proc"),
        ("{tmp}/file/ds", "{tmp}/file is not a folder"),
        ("{tmp}/file", "it is not a folder"),
    ],
    ids=["under-proc", "a-file-in-the-way", "a-file"],
)
def test_a_root_that_cannot_be_made_exits_1_naming_it(tmp_path, capsys, root, message):
    (tmp_path / "file").write_text("not a folder")
    root, message = root.format(tmp=tmp_path), message.format(tmp=tmp_path)
    assert main(record(root, "--camera", f"front={SMALL}")) == EXIT_BAD_ARGUMENTS
    err = capsys.readouterr().err
    assert f"cannot use {root} as the dataset folder: {message}" in err, err
    assert "Errno" not in err and "writer.lock" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"], "the probe left something"


def test_feature_entries_are_named_in_info_json(tmp_path, capsys):
    root = tmp_path / "ds"
    args = record(root, "--camera", f"front={SMALL}", "--feature",
                  "observation.state=3:x,y,z", "--feature", "action=2")  # fmt: skip
    assert main(args) == EXIT_OK, capsys.readouterr().err
    features = json.loads((root / "meta" / "info.json").read_text())["features"]
    assert features["observation.state"]["names"] == ["x", "y", "z"]
    assert features["observation.state"]["shape"] == [3]
    assert features["action"]["names"] is None


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ("observation.state=0", "observation.state=0: a feature needs at least 1 dimension"),
        ("observation.state=3:x,y", "expected 3 comma-separated entry names after the ':', got 2"),
        ("image=2,3:a,b", "entry names are for 1-D features"),
        ("state=x", "expected NAME=DIMS or NAME=DIMS:ENTRY,..."),
    ],
    ids=["zero", "too-few-names", "names-of-2-d", "not-a-size"],
)
def test_a_bad_feature_gets_a_message_of_its_own(tmp_path, capsys, feature, message):
    code = main(record(tmp_path / "ds", "--camera", f"front={SMALL}", "--feature", feature))
    assert code == EXIT_BAD_ARGUMENTS
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_record_help_gives_the_camera_size_and_pixel_format_syntax(capsys):
    assert main(["record", "--help"]) == EXIT_OK
    text = capsys.readouterr().out
    for words in ("opencv:0:640x480:MJPG", "WIDTHxHEIGHT", "NAME=DIMS[:ENTRY,...]"):
        assert words in text, f"--help does not mention {words!r}"


def test_demo_help_describes_the_demo_and_every_option(capsys):
    assert main(["demo", "--help"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "appended" in text and "shmpipe verify" in text
    for option in ("--root DIR", "--cameras N", "--height PIXELS", "--width PIXELS", "--fps N",
                   "--seconds SECONDS"):  # fmt: skip
        line = next(line for line in text.splitlines() if line.strip().startswith(option))
        assert len(line.strip()) > len(option) + 5, f"{option} has no description: {line!r}"
