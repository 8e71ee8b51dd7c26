"""`verify` and `pack` on hostile, broken and half-written datasets: a clear problem line and
exit 2 (1: not a dataset), never a traceback, a hang or a memory blow-up; pack refuses what
verify rejects and leaves the dataset as it was."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from shmpipe.dataset.files import take_lock
from shmpipe.dataset.pack_journal import PACK_JOURNAL
from shmpipe.tools.cli import main
from shmpipe.tools.pack import packer
from tests.helpers.hostile import DAMAGE, edit_episodes


@pytest.fixture
def root(hostile_root) -> Path:
    return hostile_root


def files_of(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.lstat().st_size
        for p in sorted(root.rglob("*"))
        if p.name != "writer.lock" and not p.is_dir()
    }


@pytest.mark.timeout(20)
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_verify_names_the_damage_and_exits_with_its_code(root, damage, capsys):
    make, code, words = DAMAGE[damage]
    make(root)
    assert main(["verify", str(root)]) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert words in out + err, f"{damage}: {words!r} not in:\n{out}{err}"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_pack_refuses_what_verify_rejects_and_changes_nothing(root, damage, capsys):
    make, code, _ = DAMAGE[damage]
    make(root)
    before = files_of(root)
    assert main(["pack", str(root), "--data-mb", "1e-6", "--video-mb", "1e-6"]) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "pack" in err and out == "", f"{damage}:\n{out}{err}"
    assert files_of(root) == before


def test_pack_of_a_whole_dataset_still_packs(root, capsys):
    assert main(["pack", str(root), "--data-mb", "1e-6", "--video-mb", "1e-6"]) == 0
    assert main(["verify", str(root)]) == 0, capsys.readouterr().out


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def test_an_episode_claiming_two_billion_frames_allocates_nothing_for_them(root):
    """Before: verify built arrays of the claimed length (16 GB each) and was OOM-killed."""
    edit_episodes(root, "length", pa.array([2_000_000_000], pa.int64()))
    for command in ("verify", "pack"):
        done = subprocess.run(
            [sys.executable, "-m", "shmpipe", command, str(root)],
            capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory,
        )  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr and "2000000000" in done.stdout + done.stderr


def stats_ahead_by_one_commit(root: Path) -> None:
    """stats.json as a recorder leaves it for the instant between writing it and info.json."""
    path = root / "meta/stats.json"
    stats = json.loads(path.read_text())
    stats["index"]["count"] = [stats["index"]["count"][0] + 10]
    path.write_text(json.dumps(stats))


def test_verify_of_a_dataset_mid_commit_says_it_is_being_recorded(root, capsys):
    """Before: "meta/stats.json: index count[0] is 30.0, expected 20.0", a false problem."""
    stats_ahead_by_one_commit(root)
    with take_lock(root):
        assert main(["verify", str(root)]) == 2
    out = capsys.readouterr().out
    assert "the dataset is being recorded" in out and "verify it once the recorder is closed" in out
    assert "FAILED: 1 problem\n" in out + "\n"
    # the same files with no recorder holding them: damage, named as such
    assert main(["verify", str(root)]) == 2
    assert "index count[0] is 30.0, expected 20.0" in capsys.readouterr().out


def test_verify_of_a_live_dataset_between_commits_is_whole(root, capsys):
    with take_lock(root):
        assert main(["verify", str(root)]) == 0, capsys.readouterr().out


def test_verify_after_an_interrupted_pack_says_how_to_finish_it(root, monkeypatch, capsys):
    """Before: "data/chunk-000/file-000.parquet: 10 rows of episodes not in meta/episodes"."""

    def power_cut_mid_swap(root: Path) -> None:
        journal = json.loads((root / PACK_JOURNAL).read_text())
        temporary, final = journal["renames"][0]
        os.replace(root / temporary, root / final)  # one rename of many, then the lights go out
        raise KeyboardInterrupt

    monkeypatch.setattr(packer, "finish_pack", power_cut_mid_swap)
    with pytest.raises(KeyboardInterrupt):
        packer.pack(root, 1e-6, 1e-6)
    monkeypatch.undo()
    assert main(["verify", str(root)]) == 2
    out = capsys.readouterr().out
    assert "a pack was interrupted" in out and f"run `shmpipe pack {root}` again" in out
    assert "not in meta/episodes" not in out
    assert main(["pack", str(root)]) == 0
    assert main(["verify", str(root)]) == 0
