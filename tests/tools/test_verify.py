"""`shmpipe verify`: whole datasets (LeRobot's own and ours) pass; each kind of damage is named.

Exit codes come from the real command (`python -m shmpipe verify`), details from the library.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe import Pipeline
from shmpipe.tools.cli import main
from shmpipe.tools.verify.verifier import verify_dataset
from shmpipe.tools.verify.video import frame_times
from tests.helpers.paths import REFERENCE, needs_reference

FPS = 30
FRAMES = 20  # per episode
FRONT, WRIST = "observation.images.front", "observation.images.wrist"
CAMERAS = {FRONT: (48, 64, 3), WRIST: (48, 64, 3)}
FEATURES = {"observation.state": (6,)}


def run_verify(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "shmpipe", "verify", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """Two 20-frame episodes of two tiny cameras, recorded by the Pipeline (thread backend)."""
    root = tmp_path_factory.mktemp("recorded") / "dataset"
    rng = np.random.default_rng(7)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHMPIPE_BACKEND", "thread")
        with Pipeline(root, fps=FPS, cameras=CAMERAS, features=FEATURES) as pipe:
            for episode in range(2):
                for _ in range(FRAMES):
                    frame = {
                        name: rng.integers(0, 256, shape, np.uint8)
                        for name, shape in CAMERAS.items()
                    }
                    frame["observation.state"] = rng.normal(size=6).astype(np.float32)
                    pipe.add_frame(frame, task=f"task {episode}")
                pipe.finish_episode()
    return root


@pytest.fixture
def copy_of(tmp_path):
    def copy(root: Path) -> Path:
        return Path(shutil.copytree(root, tmp_path / "copy"))

    return copy


def drop_last_packet(path: Path) -> None:
    """Re-mux the video without its last frame (no re-encode)."""
    packets_path = path.with_suffix(".tmp.mp4")
    with av.open(str(path)) as source, av.open(str(packets_path), "w") as target:
        stream = source.streams.video[0]
        out = target.add_stream_from_template(stream, opaque=True)
        packets = [p for p in source.demux(stream) if p.size]
        for packet in packets[:-1]:
            packet.stream = out
            target.mux(packet)
    packets_path.replace(path)


def where(report) -> set[tuple]:
    return {(p.episode, p.camera, p.file) for p in report.problems}


def assert_fails_with_exit_2(root: Path) -> None:
    done = run_verify(root)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("FAILED: ")


@needs_reference
def test_lerobot_reference_is_ok():
    done = run_verify(REFERENCE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "OK: 2 episodes, 60 frames, 2 cameras"


@needs_reference
def test_json_output_is_one_object():
    done = run_verify(REFERENCE, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["problems"] == []
    assert (report["episodes"], report["frames"], report["cameras"]) == (2, 60, 2)
    assert report["video_frames"] == 120


def test_recorded_dataset_is_ok(recorded):
    done = run_verify(recorded)
    assert done.returncode == 0, done.stdout + done.stderr
    report = verify_dataset(recorded, decode=True)
    assert report.problems == []
    assert (report.episodes, report.frames, report.cameras) == (2, 2 * FRAMES, 2)
    assert report.video_frames == 2 * 2 * FRAMES


def test_not_a_dataset_is_a_bad_argument(tmp_path, capsys):
    done = run_verify(tmp_path)
    assert done.returncode == 1
    assert "not a LeRobot dataset: no meta/info.json" in done.stderr
    assert main(["verify"]) == 1  # no DIR
    assert main(["verify", str(tmp_path / "absent")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta/info.json").write_text('{"codebase_version": "v2.1"}')
    assert main(["verify", str(tmp_path)]) == 1
    assert "not a LeRobot v3.0 dataset (codebase_version 'v2.1')" in capsys.readouterr().err


def test_removed_data_row_is_named_with_its_episode(recorded, copy_of):
    root = copy_of(recorded)
    file = "data/chunk-000/file-001.parquet"
    table = pq.read_table(root / file)
    pq.write_table(table.take([i for i in range(table.num_rows) if i != 5]), root / file)
    report = verify_dataset(root)
    assert (1, None, file) in where(report)
    messages = [p.message for p in report.problems if p.episode == 1]
    assert "19 rows, meta/episodes says length 20" in messages
    assert "frame_index 6 at row 5 of the episode, expected 5" in messages
    assert all(p.episode in (1, None) for p in report.problems), report.text()
    assert_fails_with_exit_2(root)


def test_missing_video_is_named_with_its_episode_and_camera(recorded, copy_of):
    root = copy_of(recorded)
    file = f"videos/{WRIST}/chunk-000/file-000.mp4"
    (root / file).unlink()
    report = verify_dataset(root)
    assert where(report) == {(0, WRIST, file)}
    assert report.problems[0].message == "video file missing"
    assert_fails_with_exit_2(root)


def test_video_one_frame_short_is_named_with_the_missing_time(recorded, copy_of):
    root = copy_of(recorded)
    file = f"videos/{FRONT}/chunk-000/file-001.mp4"
    drop_last_packet(root / file)
    report = verify_dataset(root)
    assert where(report) == {(1, FRONT, file)}
    assert report.problems[0].message == (
        "19 frames in [0.0000, 0.6667) s, expected 20; first missing at 0.6333 s"
    )
    assert_fails_with_exit_2(root)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.8])
def test_truncated_video_is_named_with_its_episode_and_camera(recorded, copy_of, keep):
    root = copy_of(recorded)
    path = root / f"videos/{FRONT}/chunk-000/file-001.mp4"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    report = verify_dataset(root)
    assert where(report) == {(1, FRONT, path.relative_to(root).as_posix())}, report.text()
    assert " frames in [0.0000, 0.6667) s, expected 20; first missing at " in report.text()
    assert_fails_with_exit_2(root)


@needs_reference
def test_video_one_frame_short_in_a_shared_file_names_the_last_episode(copy_of):
    root = copy_of(REFERENCE)
    file = "videos/observation.images.cam1/chunk-000/file-000.mp4"
    drop_last_packet(root / file)
    report = verify_dataset(root)
    assert where(report) == {(1, "observation.images.cam1", file)}
    assert report.problems[0].message.endswith("expected 30; first missing at 1.9667 s")


def test_info_total_frames_off_by_one_is_reported(recorded, copy_of):
    root = copy_of(recorded)
    info = json.loads((root / "meta/info.json").read_text())
    info["total_frames"] += 1
    (root / "meta/info.json").write_text(json.dumps(info))
    report = verify_dataset(root)
    assert [p.line() for p in report.problems] == [
        f"meta/info.json: total_frames is {2 * FRAMES + 1}, found {2 * FRAMES}"
    ]
    assert_fails_with_exit_2(root)


@pytest.mark.parametrize("feature", ["observation.state", WRIST])
def test_altered_stats_mean_is_reported(recorded, copy_of, feature):
    root = copy_of(recorded)
    stats = json.loads((root / "meta/stats.json").read_text())
    mean = np.array(stats[feature]["mean"])
    stats[feature]["mean"] = (mean + 0.01).tolist()
    (root / "meta/stats.json").write_text(json.dumps(stats))
    report = verify_dataset(root)
    camera = feature if feature in CAMERAS else None
    assert where(report) == {(None, camera, "meta/stats.json")}
    assert any(p.message.startswith(f"{feature} mean[0] is ") for p in report.problems)
    assert_fails_with_exit_2(root)


def test_stats_of_ours_must_be_exact_not_just_consistent(recorded, copy_of):
    """q50 cannot be derived from episodes' stats; for shmpipe's datasets it is checked exactly."""
    root = copy_of(recorded)
    stats = json.loads((root / "meta/stats.json").read_text())
    stats["observation.state"]["q50"][3] *= 1 + 1e-6
    (root / "meta/stats.json").write_text(json.dumps(stats))
    report = verify_dataset(root)
    assert [p.message.split(" is ")[0] for p in report.problems] == ["observation.state q50[3]"]


@needs_reference
def test_altered_stats_in_lerobots_dataset_disagree_with_its_episodes(copy_of):
    root = copy_of(REFERENCE)
    stats = json.loads((root / "meta/stats.json").read_text())
    stats["action"]["max"][1] += 0.5
    (root / "meta/stats.json").write_text(json.dumps(stats))
    report = verify_dataset(root)
    assert [p.line().split(" is ")[0] for p in report.problems] == [
        "meta/stats.json: action max[1]"
    ]


def test_packet_times_are_the_decoded_times_with_b_frames(tmp_path):
    """Counting packets is decoding's count; sorting by pts undoes B-frame reordering."""
    path = tmp_path / "b_frames.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"bf": "2", "g": "10"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(25):
            image = np.full((48, 64, 3), (i * 37) % 256, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        demuxed = [p.pts for p in container.demux(video=0) if p.size]
    assert demuxed != sorted(demuxed), "the test video has no reordered frames"
    packets, decoded = frame_times(path), frame_times(path, decode=True)
    np.testing.assert_array_equal(packets, decoded)
    assert len(packets) == 25


def test_counts_are_singular_or_plural_as_english_has_them():
    from shmpipe.tools.verify.report import Problem, VerifyReport

    one = VerifyReport(Path("ds"), episodes=1, frames=1, cameras=1, video_frames=1, seconds=1.0)
    assert one.text().splitlines() == [
        "checked 1 episode, 1 video frame in 1.00 s (1.0 episodes/s, 1 frames/s)",
        "OK: 1 episode, 1 frame, 1 camera",
    ]
    one.problems.append(Problem("broken", 0))
    assert one.text().splitlines()[-1] == "FAILED: 1 problem"
    two = VerifyReport(Path("ds"), episodes=2, frames=60, cameras=2, video_frames=120)
    assert two.text().splitlines()[-1] == "OK: 2 episodes, 60 frames, 2 cameras"


def test_files_no_episode_lists_but_a_reader_globs_are_reported(recorded, copy_of):
    """An uncommitted episode's data or video left visible (as before issue 25's staging, after
    a SIGKILL): LeRobot's loader would read them, so verify names each."""
    root = copy_of(recorded)
    data, video = "data/chunk-000/file-009.parquet", f"videos/{WRIST}/chunk-000/file-009.mp4"
    shutil.copy(root / "data/chunk-000/file-000.parquet", root / data)
    shutil.copy(root / f"videos/{WRIST}/chunk-000/file-000.mp4", root / video)
    (root / (data + ".partial")).write_bytes(b"staged: no reader globs it")
    report = verify_dataset(root)
    assert where(report) == {(None, None, data), (None, None, video)}
    assert all("no episode in meta/episodes lists it" in p.message for p in report.problems)
    assert_fails_with_exit_2(root)
