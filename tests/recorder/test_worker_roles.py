"""Workers are keyed by a typed role, so a camera may carry any name a worker kind has."""

import numpy as np

from shmpipe import Pipeline
from tests.helpers.episodes import assert_marked_episode
from tests.helpers.frames import marked_frames


def test_a_camera_named_stats_is_recorded_beside_the_stats_worker(tmp_path, backend):
    frames, front = marked_frames(20, 64, 96), marked_frames(20, 64, 96, phase=0.5)
    cameras = {"stats": (64, 96, 3), "front": (64, 96, 3)}
    with Pipeline(tmp_path / "ds", fps=30, cameras=cameras, features={"action": (2,)},
                  control_priority=None) as pipe:  # fmt: skip
        for i, image in enumerate(frames):
            pipe.add_frame({"stats": image, "front": front[i],
                            "action": np.full(2, i, np.float32)}, task="t")  # fmt: skip
        status = pipe.status()
        result = pipe.finish_episode()
    assert status.cameras["stats"].worker_pid != status.stats.worker_pid or backend == "thread"
    assert status.stats.alive and status.cameras["stats"].alive
    assert_marked_episode(result, "stats", frames, len(frames))
    assert_marked_episode(result, "front", front, len(front))
    assert result.stats["stats"]["count"][0] > 0 and result.stats["front"]["count"][0] > 0
