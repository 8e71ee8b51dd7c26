"""LeRobot 0.4.x's real lerobot-record, through the documented `shmpipe lerobot-record`: a mock
robot and teleoperator (lerobot_counter_robot, loaded with LeRobot's own plugin flag) whose
cameras and joints carry a frame counter. Create 2 episodes, resume for 2 more; LeRobot's
LeRobotDataset then loads 4 episodes and every camera frame shows its row's counter. A failure
in the loop surfaces as itself, with the saved episode kept.

Marked `lerobot` (not in the default run): CI runs it in a LeRobot venv (.ci/lerobot_venv.sh).
Without LeRobot it skips, unless LEROBOT_REQUIRED=1 (CI), which makes the skip a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.lerobot_counter import JOINT_OFFSETS, TELEOP_OFFSET, load_in_place

pytestmark = pytest.mark.lerobot
HERE = Path(__file__).resolve().parent
REPO_ID = "local/shmpipe_counter"


@pytest.fixture(scope="module")
def lerobot():
    try:
        import lerobot.scripts.lerobot_record  # noqa: F401
    except ImportError as error:
        if os.environ.get("LEROBOT_REQUIRED") == "1":
            pytest.fail(f"LEROBOT_REQUIRED=1 but LeRobot does not import: {error}")
        pytest.skip(f"LeRobot is not installed here ({error})")
    from importlib.metadata import version

    return version("lerobot")


# LeRobot's own lerobot-record, in this process's module (the counter robot patches its factories)
LEROBOTS_OWN = ["-c", "import sys; from lerobot.scripts import lerobot_record as r; "
                "sys.argv[0] = 'lerobot-record'; r.main()"]  # fmt: skip


def lerobot_record(root: Path, *extra: str, env: dict | None = None,
                   own: bool = False) -> subprocess.CompletedProcess:  # fmt: skip
    """`shmpipe lerobot-record` with lerobot-record's own arguments, as a user runs it; `own`:
    LeRobot's `lerobot-record` itself, with the same arguments."""
    command = LEROBOTS_OWN if own else ["-m", "shmpipe", "lerobot-record"]
    argv = [
        sys.executable, *command,
        "--robot.discover_packages_path=lerobot_counter_robot",
        "--robot.type=shmpipe_counter", "--robot.id=mock",
        "--teleop.type=shmpipe_counter_teleop", "--teleop.id=mock",
        f"--dataset.repo_id={REPO_ID}", f"--dataset.root={root}",
        "--dataset.single_task=count frames", "--dataset.fps=30",
        "--dataset.episode_time_s=1", "--dataset.reset_time_s=0.3",
        "--dataset.num_episodes=2", "--dataset.push_to_hub=false",
        "--display_data=false", "--play_sounds=false", *extra,
    ]  # fmt: skip
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=480)


def tracebacks(stderr: str) -> int:
    """Tracebacks in a run's output, besides the one LeRobot prints when pynput finds no display
    (it then records headless)."""
    blocks = stderr.split("Traceback (most recent call last):")[1:]
    return sum("pynput" not in block.split("\n\n")[0] for block in blocks)


def check_counters(root: Path) -> tuple[int, int]:
    """LeRobot loads the dataset with every camera frame of every row in place
    (tests.helpers.lerobot_counter), and each row's action is the teleop's."""
    loaded = load_in_place(root, REPO_ID)
    action = loaded.rows["action"].astype(np.float64) - loaded.counters[:, None]
    assert np.allclose(action, JOINT_OFFSETS + TELEOP_OFFSET, atol=1e-3)
    return len(loaded.episodes), loaded.num_frames


def saved_frames(stdout: str, episodes: int, least_per_episode: int = 1) -> int:
    """The frames shmpipe says it saved in the session. LeRobot's loop runs on the clock
    (`while timestamp < episode_time_s`), so a busy machine gives fewer than fps x seconds
    (21 of 30 were seen beside another test run): the count is LeRobot's to decide, shmpipe's
    to keep whole (check_counters); the loop's rate beside shmpipe is measured in bench/."""
    match = re.search(rf"{episodes} episodes saved in this session \((\d+) frames\)", stdout)
    assert match, stdout
    frames = int(match[1])
    assert episodes * least_per_episode <= frames <= episodes * 30, stdout
    return frames


def codecs_of(root: Path) -> dict[str, str]:
    """Each video file's codec (its stream's, as a decoder reports it)."""
    import av

    out = {}
    for path in sorted((root / "videos").rglob("*.mp4")):
        with av.open(str(path)) as container:
            out[path.relative_to(root).as_posix()] = (
                container.streams.video[0].codec_context.codec.canonical_name
            )
    return out


def codec_flag(lerobot_version: str, vcodec: str) -> str:
    """lerobot-record's codec flag: --dataset.rgb_encoder.vcodec since LeRobot 0.5, before
    that --dataset.vcodec."""
    old = tuple(int(p) for p in lerobot_version.split(".")[:2]) < (0, 5)
    return f"--dataset.vcodec={vcodec}" if old else f"--dataset.rgb_encoder.vcodec={vcodec}"


@pytest.mark.parametrize("vcodec", [None, "h264"])
def test_lerobot_record_creates_then_resumes_through_shmpipe(lerobot, tmp_path, vcodec):
    """Created with LeRobot's default codec (AV1) or with the codec flag (h264); the resume,
    without any flag, appends with the dataset's codec: every file decodes as that codec, every
    frame in place."""
    root = tmp_path / "counter"
    first = lerobot_record(root, *([codec_flag(lerobot, vcodec)] if vcodec else []))
    assert first.returncode == 0, first.stderr[-4000:]
    assert tracebacks(first.stderr) == 0, first.stderr[-4000:]
    assert "Streaming encoding is disabled" not in first.stderr  # shmpipe encodes while recording
    frames = saved_frames(first.stdout, 2)
    assert check_counters(root) == (2, frames)

    again = lerobot_record(root, "--resume=true")
    assert again.returncode == 0, again.stderr[-4000:]
    assert tracebacks(again.stderr) == 0, again.stderr[-4000:]
    assert "resuming" in again.stderr and "(2 episodes there)" in again.stderr, again.stderr[-4000:]
    assert "episode 3:" in again.stdout, again.stdout
    assert not (root / "images").exists()  # LeRobot's PNG writer never ran
    assert check_counters(root) == (4, frames + saved_frames(again.stdout, 2))
    codecs = codecs_of(root)  # one file per episode and camera
    assert len(codecs) == 4 * 2 and set(codecs.values()) == {vcodec or "av1"}, codecs


def test_a_failure_in_the_loop_surfaces_as_itself(lerobot, tmp_path):
    root = tmp_path / "failing"
    run = lerobot_record(root, env={"SHMPIPE_TEST_FAIL_AT": "45"})  # in the second episode
    assert run.returncode == 1
    tail = run.stderr[run.stderr.rindex("Traceback"):]
    assert tail.strip().endswith("RuntimeError: mock robot: injected failure at counter 45"), tail
    assert "During handling" not in run.stderr and "AttributeError" not in run.stderr, tail
    assert "episode 1 discarded" in run.stderr
    episodes, frames = check_counters(root)  # how many LeRobot's loop made: 20 on a loaded machine
    assert episodes == 1 and 1 <= frames <= 30, (episodes, frames)


def digests(root: Path) -> dict[str, str]:
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.mark.timeout(1200)  # LeRobot's own PNG path, a resume and two loads; a loaded machine
@pytest.mark.parametrize("writer", ["png", "streaming"])
def test_a_dataset_lerobots_own_writer_made_resumes_through_shmpipe(lerobot, tmp_path, writer):
    """LeRobot's own lerobot-record creates 2 episodes (its PNG path, or its streaming encoder);
    `shmpipe lerobot-record --resume=true` appends 2 more without repeating any flag; LeRobot
    then loads all 4 with every camera frame showing its row's counter."""
    root = tmp_path / f"own-{writer}"
    streaming = ["--dataset.streaming_encoding=true"] if writer == "streaming" else []
    own = lerobot_record(root, *streaming, own=True)
    assert own.returncode == 0, own.stderr[-4000:]
    assert "shmpipe" not in json.loads((root / "meta" / "info.json").read_text())  # LeRobot's
    episodes, frames = check_counters(root)
    assert episodes == 2

    again = lerobot_record(root, "--resume=true")
    assert again.returncode == 0, again.stderr[-4000:]
    assert tracebacks(again.stderr) == 0, again.stderr[-4000:]
    assert "(2 episodes there)" in again.stderr, again.stderr[-4000:]
    # LeRobot's loop may run well under 30 Hz on a loaded machine (it did beside 0.4.4's own
    # writer's processes): the count is LeRobot's to decide, every frame of it shmpipe's to keep
    assert check_counters(root) == (4, frames + saved_frames(again.stdout, 2))


@pytest.mark.timeout(900)
def test_a_dataset_that_cannot_be_resumed_is_one_line_exit_1_and_left_as_it_was(lerobot, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "own"
    own = lerobot_record(root, "--dataset.num_episodes=1", own=True)
    assert own.returncode == 0, own.stderr[-4000:]
    pq.write_table(pa.table({"task_index": pa.array([0], pa.int64())}),
                   root / "meta" / "tasks.parquet")  # a cut-down table: no task text column
    before = digests(root)
    run = lerobot_record(root, "--resume=true")
    assert run.returncode == 1, run.stderr[-4000:]
    assert tracebacks(run.stderr) == 0, run.stderr[-4000:]
    ours = [line for line in run.stderr.splitlines() if line.startswith("shmpipe lerobot-record:")]
    assert len(ours) == 2 and "tasks.parquet" in ours[1] and "text column" in ours[1], ours
    assert digests(root) == before  # no lock, no meta/shmpipe, no temporary file


@pytest.mark.timeout(900)
def test_display_data_is_shown_through_shmpipes_preview_not_in_the_loop(lerobot, tmp_path):
    """--display_data with LeRobot's --display_ip/--display_port: shmpipe's preview worker
    connects to that viewer (a socket here that accepts and never reads) while the episode is
    recorded; LeRobot's own per-frame logging is not used, and every frame is recorded."""
    import socket
    import threading

    root = tmp_path / "shown"
    connected = []
    with socket.socket() as viewer:
        viewer.bind(("127.0.0.1", 0))
        viewer.listen(8)
        viewer.settimeout(120)
        port = viewer.getsockname()[1]
        listener = threading.Thread(target=lambda: connected.append(viewer.accept()[0]))
        listener.start()
        run = lerobot_record(root, "--dataset.num_episodes=1", "--dataset.episode_time_s=4",
                             "--display_data=true", "--display_ip=127.0.0.1",
                             f"--display_port={port}")  # fmt: skip
        listener.join()
    assert connected, "no connection to the viewer's address"  # the preview worker's
    connected[0].close()
    assert run.returncode == 0, run.stderr[-4000:]
    assert tracebacks(run.stderr) == 0, run.stderr[-4000:]
    url = f"rerun+http://127.0.0.1:{port}/proxy"
    assert f"shown through shmpipe's preview in Rerun ({url})" in run.stderr, run.stderr[-4000:]
    episodes, frames = check_counters(root)
    assert episodes == 1 and frames >= 100, (episodes, frames)
