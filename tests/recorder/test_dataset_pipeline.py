"""The dataset as a LeRobot user loads it, after recording through the whole pipeline.

Read back with pyarrow and PyAV only: the episodes table says where each episode's frames are;
decoding there must give the frames that were added, at from_timestamp + i / fps.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe import Pipeline, VideoEncoderConfig
from tests.helpers.frames import smooth_frame
from tests.helpers.media import decode_video, psnr
from tests.helpers.paths import REFERENCE, needs_reference
from tests.helpers.processes import OUR_CONTROL_PROCESSES

FPS = 30
CAMS = {"observation.images.cam0": (96, 128, 3), "observation.images.cam1": (96, 128, 3)}
FEATS = {"observation.state": (6,), "action": (6,)}


def record(pipe: Pipeline, n: int, seed: int, task: str = "pick") -> dict[str, list[np.ndarray]]:
    added = {name: [] for name in CAMS}
    for i in range(n):
        frame = {name: smooth_frame(i, 96, 128, seed + c / 3) for c, name in enumerate(CAMS)}
        for name in CAMS:
            added[name].append(frame[name])
        state = np.full(6, seed * 100 + i, np.float32)
        pipe.add_frame({**frame, "observation.state": state, "action": -state}, task=task)
    return added


def episodes_table(root: Path) -> list[dict]:
    files = sorted((root / "meta" / "episodes").rglob("*.parquet"))
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: r["episode_index"])


def digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and "meta/" not in p.relative_to(root).as_posix()
    }


def test_episodes_decode_at_their_recorded_timestamps(tmp_path, backend):
    lengths = [20, 33, 7]
    added = []
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS, features=FEATS) as pipe:
        for e, n in enumerate(lengths):
            added.append(record(pipe, n, seed=e))
            pipe.finish_episode()
    info = json.loads((tmp_path / "meta" / "info.json").read_text())
    assert (info["total_episodes"], info["total_frames"]) == (3, sum(lengths))
    episodes = episodes_table(tmp_path)
    assert [e["length"] for e in episodes] == lengths
    for e, row in enumerate(episodes):
        data = pq.read_table(
            tmp_path
            / info["data_path"].format(
                chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]
            )
        ).to_pydict()
        ours = [i for i, ep in enumerate(data["episode_index"]) if ep == e]
        assert len(ours) == row["length"]
        for name in CAMS:
            video = tmp_path / info["video_path"].format(
                video_key=name,
                chunk_index=row[f"videos/{name}/chunk_index"],
                file_index=row[f"videos/{name}/file_index"],
            )
            start = row[f"videos/{name}/from_timestamp"]
            end = row[f"videos/{name}/to_timestamp"]
            frames, times = decode_video(video)
            inside = [i for i, t in enumerate(times) if start - 1e-4 <= t < end - 1e-4]
            assert len(inside) == row["length"], f"episode {e} {name}: frame count"
            for k, i in enumerate(inside):
                assert abs(times[i] - (start + k / FPS)) < 1e-4
                assert psnr(frames[i], added[e][name][k]) >= 35, f"episode {e} {name} frame {k}"


@needs_reference
def test_files_written_by_the_pipeline_have_the_reference_schemas(tmp_path):
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS, features=FEATS, backend="thread") as pipe:
        record(pipe, 10, seed=0)
        pipe.finish_episode()
    for rel in (
        "data/chunk-000/file-000.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/tasks.parquet",
    ):
        ours, theirs = pq.read_schema(tmp_path / rel), pq.read_schema(REFERENCE / rel)
        # the reference names its cameras cam0/cam1, as we do here
        assert ours.remove_metadata() == theirs.remove_metadata(), rel
        assert set(ours.metadata or {}) == set(theirs.metadata or {}), rel
    ours = json.loads((tmp_path / "meta" / "info.json").read_text())
    theirs = json.loads((REFERENCE / "meta" / "info.json").read_text())
    assert set(theirs) <= set(ours)
    assert ours["features"]["observation.images.cam0"]["info"] == {
        **theirs["features"]["observation.images.cam0"]["info"],
        "video.height": 96,
        "video.width": 128,
    }


def test_resume_continues_indices_and_leaves_recorded_files_alone(tmp_path):
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS, features=FEATS) as pipe:
        for e in range(2):
            record(pipe, 8, seed=e)
            pipe.finish_episode()
    before = digest(tmp_path)
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS, features=FEATS) as pipe:
        assert pipe.next_episode_index == 2
        record(pipe, 5, seed=7, task="place")
        result = pipe.finish_episode()
    assert result.episode_index == 2
    assert pq.read_table(result.data).column("index").to_pylist() == list(range(16, 21))
    after = digest(tmp_path)
    assert {k: after[k] for k in before} == before, "resuming rewrote recorded files"
    tasks = pq.read_table(tmp_path / "meta" / "tasks.parquet").to_pydict()
    assert tasks["__index_level_0__"] == ["pick", "place"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"fps": 15}, "fps"),
        ({"cameras": {**CAMS, "observation.images.cam1": (48, 64, 3)}}, "cam1"),
        ({"features": {"observation.state": (7,), "action": (6,)}}, "observation.state"),
        ({"encoder": VideoEncoderConfig(crf=20)}, "crf"),
    ],
)
def test_resume_with_other_settings_is_refused_and_changes_nothing(tmp_path, change, message):
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS, features=FEATS, backend="thread") as pipe:
        record(pipe, 4, seed=0)
        pipe.finish_episode()
    before = digest(tmp_path)
    args = {"fps": FPS, "cameras": CAMS, "features": FEATS, "backend": "thread", **change}
    with pytest.raises(ValueError, match=message):
        Pipeline(tmp_path, **args).start()
    assert digest(tmp_path) == before


def test_cancelled_episode_leaves_no_trace_in_any_file(tmp_path, backend):
    with Pipeline(tmp_path, fps=FPS, cameras=CAMS, features=FEATS) as pipe:
        record(pipe, 6, seed=0)
        pipe.finish_episode()
        before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
        record(pipe, 9, seed=1, task="a task only the cancelled episode had")
        pipe.cancel_episode()
        after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
        assert after == before
        record(pipe, 3, seed=2)
        assert pipe.finish_episode().episode_index == 1
    tasks = pq.read_table(tmp_path / "meta" / "tasks.parquet").to_pydict()
    assert tasks["__index_level_0__"] == ["pick"]


def test_an_encoder_failing_in_its_flush_discards_what_was_written_meanwhile(
    tmp_path, monkeypatch
):
    """finish_episode writes the data file and metadata while the encoders flush; an encoder
    failing after that discards the episode as before: every file as it was."""
    from shmpipe.dataset import layout
    from shmpipe.errors import WorkerError
    from shmpipe.video.episode_writer import EpisodeVideoWriter

    def fail_once_the_episode_row_is_written(writer) -> tuple[float, int]:
        row = layout.staged(layout.episodes_path(tmp_path, 1))
        deadline = time.monotonic() + 10
        while not row.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        data = layout.staged(layout.data_path(tmp_path, 1))
        assert data.exists(), "the data file was not written (staged) early"
        raise RuntimeError("injected failure while flushing")

    with Pipeline(tmp_path, fps=FPS, cameras=CAMS, features=FEATS, backend="thread") as pipe:
        record(pipe, 6, seed=0)
        pipe.finish_episode()
        before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
        record(pipe, 9, seed=1, task="a task only the failed episode had")
        with monkeypatch.context() as patch:
            patch.setattr(EpisodeVideoWriter, "finish", fail_once_the_episode_row_is_written)
            with pytest.raises(WorkerError, match="injected failure while flushing"):
                pipe.finish_episode()
        after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
        assert sorted(map(str, after)) == sorted(map(str, before))
        assert after == before
        record(pipe, 3, seed=2)
        assert pipe.finish_episode().episode_index == 1
    tasks = pq.read_table(tmp_path / "meta" / "tasks.parquet").to_pydict()
    assert tasks["__index_level_0__"] == ["pick"]


CHILD = """
import sys, time, numpy as np
from shmpipe import Pipeline
cams = {"observation.images.cam0": (96, 128, 3), "observation.images.cam1": (96, 128, 3)}
with Pipeline(sys.argv[1], fps=30, cameras=cams) as pipe:
    for e in range(2):
        for i in range(10):
            pipe.add_frame({n: np.full((96, 128, 3), 10 * i, np.uint8) for n in cams}, task="t")
        pipe.finish_episode()
    for i in range(10):
        pipe.add_frame({n: np.full((96, 128, 3), 10 * i, np.uint8) for n in cams}, task="t")
    print("between", flush=True)
    time.sleep(60)
"""


def test_a_crash_mid_recording_leaves_a_loadable_dataset(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    OUR_CONTROL_PROCESSES.add(child.pid)
    assert child.stdout.readline().strip() == "between"
    child.kill()
    child.wait()
    # the workers see their owner die and remove what the open episode left
    deadline = time.monotonic() + 5
    while list(tmp_path.rglob("*.partial*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not list(tmp_path.rglob("*.partial*")), "the dead owner's workers left segments"
    info = json.loads((tmp_path / "meta" / "info.json").read_text())
    assert (info["total_episodes"], info["total_frames"]) == (2, 20)
    for row in episodes_table(tmp_path):
        for name in CAMS:
            path = tmp_path / f"videos/{name}/chunk-000/file-{row['episode_index']:03d}.mp4"
            assert len(decode_video(path)[0]) == row["length"]
    cams = {"observation.images.cam0": (96, 128, 3), "observation.images.cam1": (96, 128, 3)}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, backend="thread") as pipe:
        pipe.add_frame({n: np.zeros((96, 128, 3), np.uint8) for n in cams}, task="t")
        assert pipe.finish_episode().episode_index == 2


def test_robot_type_and_joint_names_given_to_the_pipeline_reach_info_json(tmp_path):
    joints = [f"joint{i}.pos" for i in range(6)]
    cams = {"observation.images.cam0": (48, 64, 3)}
    with Pipeline(tmp_path, fps=FPS, cameras=cams, features={"observation.state": (6,)},
                  robot_type="so100", feature_names={"observation.state": joints},
                  backend="thread") as pipe:  # fmt: skip
        pipe.add_frame({"observation.images.cam0": np.zeros((48, 64, 3), np.uint8),
                        "observation.state": np.zeros(6, np.float32)}, task="t")  # fmt: skip
        pipe.finish_episode()
    info = json.loads((tmp_path / "meta" / "info.json").read_text())
    assert info["robot_type"] == "so100"
    assert info["features"]["observation.state"]["names"] == joints
    assert info["features"]["observation.images.cam0"]["names"] == ["height", "width", "channels"]
