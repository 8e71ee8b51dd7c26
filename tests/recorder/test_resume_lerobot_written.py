"""A dataset LeRobot 0.4.4 wrote (tests/data, no meta/shmpipe, no 'shmpipe' block) resumes: one
scan (numeric stats from its rows, image histograms from its decoded videos), then recording goes
on beside its files, which stay byte for byte; stats.json is exact over old and new rows."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from shmpipe import Pipeline, VideoEncoderConfig
from shmpipe.dataset import layout
from shmpipe.stats.images import channel_histograms, stats_from_histograms
from shmpipe.tools.pack.packer import pack
from shmpipe.tools.verify.verifier import verify_dataset
from tests.helpers.frames import smooth_frame
from tests.helpers.paths import REFERENCE, needs_reference

pytestmark = needs_reference
CAMERAS = {f"observation.images.cam{i}": (96, 128, 3) for i in range(2)}
FEATURES = {"observation.state": (6,), "action": (6,)}
NEW_LENGTHS = (20, 25)
OLD_FRAMES = 60


def file_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def pipeline(root: Path) -> Pipeline:
    return Pipeline(root, fps=30, cameras=CAMERAS, features=FEATURES,
                    encoder=VideoEncoderConfig(), backend="thread")  # fmt: skip


@pytest.fixture
def resumed(tmp_path, caplog) -> tuple[Path, dict, dict, list[str]]:
    """(root, digests of LeRobot's files, camera -> frames recorded, warnings of the resume)."""
    root = shutil.copytree(REFERENCE, tmp_path / "lerobot-written")
    before = file_digests(root)
    recorded: dict[str, list[np.ndarray]] = {camera: [] for camera in CAMERAS}
    rng = np.random.default_rng(7)
    with caplog.at_level(logging.WARNING, logger="shmpipe"), pipeline(root) as pipe:
        for episode, length in enumerate(NEW_LENGTHS):
            for i in range(length):
                frame = {c: smooth_frame(i + 40 * episode, 96, 128, phase=n)
                         for n, c in enumerate(CAMERAS)}  # fmt: skip
                for camera in CAMERAS:
                    recorded[camera].append(frame[camera])
                state = rng.standard_normal(6).astype(np.float32)
                frame.update({"observation.state": state, "action": 2 * state})
                pipe.add_frame(frame, task=("synthetic task", "stack")[episode])
            pipe.finish_episode()
    return root, before, recorded, [r.getMessage() for r in caplog.records]


def test_lerobot_written_dataset_resumes_and_its_files_stay_as_they_were(resumed):
    root, before, _, warnings = resumed
    after = file_digests(root)
    kept = {p for p in before if not p.startswith("meta/") or p.startswith("meta/episodes/")}
    assert kept and {p: after[p] for p in kept} == {p: before[p] for p in kept}
    assert any("state.npz is missing; rebuilding" in w for w in warnings), warnings
    assert any("2 episodes have no image histograms" in w for w in warnings), warnings
    info = json.loads((root / layout.INFO_PATH).read_text())
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (
        4, OLD_FRAMES + sum(NEW_LENGTHS), 2)  # fmt: skip
    assert info["shmpipe"]["adopted_episodes"] == 2
    assert info["splits"] == {"train": "0:4"}
    for camera in CAMERAS:  # new episodes: files of their own, every frame there
        for episode, length in enumerate(NEW_LENGTHS, start=2):
            assert len(decoded(layout.video_path(root, camera, episode))) == length
    report = verify_dataset(root)
    assert report.ok, [p.line() for p in report.problems]


def test_stats_json_is_exact_over_old_and_new_rows(resumed):
    root, _, recorded, _ = resumed
    stats = json.loads((root / layout.STATS_PATH).read_text())
    rows = pq.read_table(sorted((root / "data").rglob("*.parquet"))).to_pydict()
    assert len(rows["index"]) == OLD_FRAMES + sum(NEW_LENGTHS)
    assert rows["index"] == list(range(len(rows["index"])))
    for name in [*FEATURES, "timestamp", "frame_index", "episode_index", "index", "task_index"]:
        values = np.array(rows[name], np.float64).reshape(len(rows["index"]), -1)
        got = {key: np.array(stats[name][key], np.float64).reshape(-1) for key in stats[name]}
        assert got["count"].tolist() == [len(values)], name
        np.testing.assert_array_equal(got["min"], values.min(axis=0), err_msg=name)
        np.testing.assert_array_equal(got["max"], values.max(axis=0), err_msg=name)
        np.testing.assert_allclose(got["mean"], values.mean(axis=0), rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(got["std"], values.std(axis=0), rtol=1e-9, atol=1e-12,
                                   err_msg=name)  # fmt: skip
    for camera in CAMERAS:  # old frames as decoded (the raw ones are gone), new ones as recorded
        old = decoded(root / f"videos/{camera}/chunk-000/file-000.mp4")
        assert len(old) == OLD_FRAMES
        histogram = sum(channel_histograms(frame) for frame in old + recorded[camera])
        want = stats_from_histograms(histogram)
        for key in ("count", "min", "max", "mean", "std"):
            np.testing.assert_allclose(np.array(stats[camera][key]), want[key], rtol=1e-12,
                                       err_msg=f"{camera} {key}")  # fmt: skip


def test_the_next_resume_reads_the_saved_state_without_a_scan(resumed, caplog):
    root, _, _, _ = resumed
    stats = (root / layout.STATS_PATH).read_bytes()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="shmpipe"):
        pipeline(root).start().close()
    assert "rebuilding" not in caplog.text and "histograms" not in caplog.text
    assert (root / layout.STATS_PATH).read_bytes() == stats


def test_other_settings_than_the_lerobot_dataset_are_refused_naming_them(tmp_path):
    root = shutil.copytree(REFERENCE, tmp_path / "lerobot-written")
    before = file_digests(root)
    wrong = Pipeline(root, fps=30, cameras=CAMERAS, features=FEATURES, backend="thread",
                     encoder=VideoEncoderConfig(vcodec="h264"))  # fmt: skip
    with pytest.raises(ValueError, match="video.codec"):
        wrong.start()
    assert file_digests(root) == before  # refused before anything was written


def test_a_video_short_of_frames_refuses_the_resume_naming_it_and_adopts_nothing(tmp_path):
    root = shutil.copytree(REFERENCE, tmp_path / "lerobot-written")
    video = root / "videos/observation.images.cam1/chunk-000/file-000.mp4"
    with av.open(str(REFERENCE / video.relative_to(root))) as source, av.open(
        str(video), "w", format="mp4"
    ) as out:  # the same stream, its last 5 frames dropped
        stream = source.streams.video[0]
        target = out.add_stream_from_template(stream, opaque=True)
        target.time_base = stream.time_base
        for packet in list(source.demux(stream))[:-6]:
            if packet.dts is not None:
                packet.stream = target
                out.mux(packet)
    info = (root / layout.INFO_PATH).read_bytes()
    with pytest.raises(ValueError, match="cam1/chunk-000/file-000.mp4: 25 frames of episode 1"):
        pipeline(root).start()
    assert (root / layout.INFO_PATH).read_bytes() == info  # not adopted
    assert not (root / layout.STATE_PATH).exists()


def test_an_adopted_dataset_packs_verifies_and_resumes(resumed, caplog):
    root, _, _, _ = resumed
    report = pack(root)
    assert (report.episodes, report.files_after) == (4, 4)  # data, 2 cameras, meta/episodes
    checked = verify_dataset(root)
    assert checked.ok, [p.line() for p in checked.problems]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="shmpipe"):
        pipeline(root).start().close()
    assert "rebuilding" not in caplog.text
