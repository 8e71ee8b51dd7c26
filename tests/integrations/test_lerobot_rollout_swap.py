"""install() and `shmpipe lerobot-rollout` route LeRobot 0.6's lerobot-rollout through shmpipe;
no LeRobot needed. Stand-in modules replay what LeRobot 0.6.1 does with the name: its
`lerobot.rollout.context.build_rollout_context` looks `LeRobotDataset` up in its module globals
at call time and calls `.create(...)` (rollout's keywords, `video_files_size_in_mb` included) or,
with --resume, `.resume(...)`. On a LeRobot without lerobot-rollout (0.4.x), only lerobot-record
is routed and `shmpipe lerobot-rollout` exits 1 saying so, with LeRobot's names put back.
The highlight strategy's `RolloutRingBuffer` (a name its setup() looks up in
`lerobot.rollout.strategies.highlight`) becomes the recorder's rolling capture: its loop is
replayed here as LeRobot 0.6.1 runs it. (tests/integrations/test_lerobot_rollout.py runs the
real lerobot-rollout 0.6.1.)
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from shmpipe.integrations import lerobot as shm_lerobot
from shmpipe.integrations.lerobot import LeRobotRecorder
from shmpipe.integrations.lerobot.command import run
from tests.helpers.media import decode_video

H, W, FPS = 48, 64, 30
JOINTS = [f"j{i}.pos" for i in range(6)]
FEATURES = {
    "action": {"dtype": "float32", "shape": (6,), "names": JOINTS},
    "observation.state": {"dtype": "float32", "shape": (6,), "names": JOINTS},
    "observation.images.front": {"dtype": "video", "shape": (H, W, 3),
                                 "names": ["height", "width", "channels"]},
}  # fmt: skip
# lerobot/rollout/context.py (0.6.1) step 5, the dataset: the calls as LeRobot makes them
CONTEXT_SOURCE = '''
def build_dataset(root, resume):
    options = dict(batch_encoding_size=1, rgb_encoder=None, depth_encoder=None,
                   streaming_encoding=True, encoder_queue_maxsize=30, encoder_threads=None,
                   image_writer_processes=0, image_writer_threads=4)
    if resume:
        return LeRobotDataset.resume("me/rollout_x", root=root, **options)
    return LeRobotDataset.create("me/rollout_x", 30, root=root, robot_type="counter",
                                 features=FEATURES, use_videos=True,
                                 video_files_size_in_mb=1, **options)
'''


class RolloutRingBuffer(list):  # LeRobot's own raw-frame ring, for a rollout without a dataset
    def __init__(self, max_seconds=30.0, max_memory_mb=2048, fps=30.0):
        super().__init__()

    def drain(self):
        frames = list(self)
        self.clear()
        return frames


class LeRobotDataset:  # LeRobot's own class: must not be reached
    @classmethod
    def create(cls, *args, **kwargs):
        raise AssertionError("LeRobot's own create() was called")

    resume = create


def fake_lerobot(monkeypatch, rollout: bool) -> dict[str, types.ModuleType]:
    """`lerobot.scripts.lerobot_record`, and with `rollout` `lerobot.rollout.context` and
    `lerobot.scripts.lerobot_rollout` (whose main() records 2 episodes of 5 frames, then
    --resume one more), in sys.modules."""
    modules = {name: types.ModuleType(name) for name in ("lerobot", "lerobot.scripts",
               "lerobot.scripts.lerobot_record")}  # fmt: skip
    modules["lerobot.scripts.lerobot_record"].LeRobotDataset = LeRobotDataset
    if rollout:
        context = types.ModuleType("lerobot.rollout.context")
        context.LeRobotDataset, context.FEATURES = LeRobotDataset, FEATURES
        exec(CONTEXT_SOURCE, context.__dict__)  # a module function: globals looked up at call
        script = types.ModuleType("lerobot.scripts.lerobot_rollout")
        script.main = lambda: record_episodes(context, sys.argv[1], [5, 5])
        highlight = types.ModuleType("lerobot.rollout.strategies.highlight")
        highlight.RolloutRingBuffer = RolloutRingBuffer
        modules.update({name: types.ModuleType(name) for name in ("lerobot.rollout",
                        "lerobot.rollout.strategies")})  # fmt: skip
        modules.update({"lerobot.rollout.context": context,
                        "lerobot.rollout.strategies.highlight": highlight,
                        "lerobot.scripts.lerobot_rollout": script})  # fmt: skip
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return modules


def counter_frame(counter: int) -> dict:
    image = np.full((H, W, 3), 40 * (counter % 6), np.uint8)
    state = np.full(6, counter, np.float32)
    return {"observation.images.front": image, "observation.state": state, "action": state,
            "task": "count"}  # fmt: skip


def record_episodes(context, root, lengths, resume=False):
    dataset = context.build_dataset(root, resume)
    counter = 100 * dataset.num_episodes
    for length in lengths:
        for _ in range(length):
            dataset.add_frame(counter_frame(counter))
            counter += 1
        dataset.save_episode()
    dataset.finalize()
    return dataset


@pytest.fixture(autouse=True)
def thread_backend(monkeypatch):
    monkeypatch.setenv("SHMPIPE_BACKEND", "thread")


def test_install_routes_rollout_create_and_resume_and_undo_puts_lerobots_back(
    monkeypatch, tmp_path
):
    modules = fake_lerobot(monkeypatch, rollout=True)
    context = modules["lerobot.rollout.context"]
    root = tmp_path / "rollout"
    with shm_lerobot.install() as handle:
        assert handle.rollout and handle.active
        assert context.LeRobotDataset is handle.stand_in
        first = record_episodes(context, root, [5, 7])
        again = record_episodes(context, root, [4], resume=True)
    assert isinstance(first, LeRobotRecorder) and handle.recorders == [first, again]
    assert again.num_episodes == 3 and again.num_frames == 16
    assert context.LeRobotDataset is LeRobotDataset and not handle.active
    assert modules["lerobot.scripts.lerobot_record"].LeRobotDataset is LeRobotDataset
    first_file = sorted(root.glob("videos/observation.images.front/*/*.mp4"))[0]  # episode 0's
    frames, _ = decode_video(first_file)
    assert np.allclose([f.mean() for f in frames], [0, 40, 80, 120, 160], atol=4)  # in place


def test_shmpipe_lerobot_rollout_runs_lerobots_entry_point_through_shmpipe(
    monkeypatch, tmp_path, capsys
):
    fake_lerobot(monkeypatch, rollout=True)
    root = tmp_path / "cli"
    assert run([str(root)], "lerobot-rollout") == 0
    out = capsys.readouterr()
    assert "shmpipe lerobot-rollout: LeRobot" in out.err
    assert "2 episodes saved in this session (10 frames)" in out.out, out.out
    assert sys.modules["lerobot.rollout.context"].LeRobotDataset is LeRobotDataset  # undone


def test_without_lerobot_rollout_only_record_is_routed_and_the_command_says_so(
    monkeypatch, capsys
):
    modules = fake_lerobot(monkeypatch, rollout=False)  # as LeRobot 0.4.x
    with shm_lerobot.install() as handle:
        assert not handle.rollout and handle.active
    assert run(["--strategy.type=sentry"], "lerobot-rollout") == 1
    err = capsys.readouterr().err
    assert "has no lerobot-rollout" in err and "LeRobot 0.6" in err, err
    assert modules["lerobot.scripts.lerobot_record"].LeRobotDataset is LeRobotDataset


class CountingRecorder(LeRobotRecorder):
    """Counts add_frame calls: the save key's tick must make none for the pre-roll."""

    calls = 0

    def add_frame(self, frame):
        CountingRecorder.calls += 1
        super().add_frame(frame)


def test_highlight_ring_is_rolling_capture_and_the_save_key_replays_nothing(
    monkeypatch, tmp_path
):
    """HighlightStrategy as LeRobot 0.6.1 runs it (setup: RolloutRingBuffer(max_seconds=1,
    ...); ring.append while not recording; on the save key `for f in ring.drain():
    dataset.add_frame(f)`, then live add_frame; save_episode): 75 frames roll through a 1 s
    window, the key keeps 1 s rounded up to a whole segment (frames 30..74, 45) with no
    add_frame at that tick, 10 live frames follow; the episode is exactly frames 30..84, each
    video frame in place. After the save it rolls again (nothing pending, dropped at the end);
    undo puts LeRobot's ring back, and without a dataset through shmpipe it is LeRobot's."""
    modules = fake_lerobot(monkeypatch, rollout=True)
    highlight = modules["lerobot.rollout.strategies.highlight"]
    root = tmp_path / "highlight"
    with shm_lerobot.install(CountingRecorder) as handle:
        dataset = modules["lerobot.rollout.context"].build_dataset(root, False)
        assert dataset.pipeline.preroll_s is None  # create() does not know the strategy
        ring = highlight.RolloutRingBuffer(max_seconds=1.0, max_memory_mb=1024, fps=FPS)
        assert dataset.pipeline.preroll_s == 1.0
        for counter in range(75):
            ring.append(counter_frame(counter))
        assert dataset.pipeline.rolling
        assert not dataset.has_pending_frames() and len(ring) == 45
        before = CountingRecorder.calls
        for buffered in ring.drain():  # the save key's tick
            dataset.add_frame(buffered)
        assert CountingRecorder.calls == before and dataset.has_pending_frames()
        assert len(ring) == 0 and not dataset.pipeline.rolling
        for counter in range(75, 85):
            dataset.add_frame(counter_frame(counter))
        dataset.save_episode()
        for counter in range(85, 100):  # rolling again
            ring.append(counter_frame(counter))
        assert dataset.pipeline.rolling and not dataset.has_pending_frames()
        dataset.finalize()
        assert dataset.num_episodes == 1 and dataset.num_frames == 55
        assert isinstance(highlight.RolloutRingBuffer(max_seconds=1.0), RolloutRingBuffer)
    assert highlight.RolloutRingBuffer is RolloutRingBuffer and handle.recorders == [dataset]
    frames, _ = decode_video(sorted(root.glob("videos/observation.images.front/*/*.mp4"))[0])
    want = [40 * (c % 6) for c in range(30, 85)]
    assert np.allclose([f.mean() for f in frames], want, atol=4)
    with shm_lerobot.install():  # no recorder made: LeRobot's own ring
        assert isinstance(highlight.RolloutRingBuffer(max_seconds=1.0), RolloutRingBuffer)
