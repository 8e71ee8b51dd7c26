"""Reading back what the counter robot recorded (tests/integrations/lerobot_counter_robot): LeRobot
loads the dataset, every row's counter is in its joints, and every camera's video holds exactly
the episode's rows, each frame showing its row's counter (rows vs decoded frames, in place).
Imports LeRobot only when called, so test modules that use it still collect without LeRobot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

BITS, BLOCK_H = 16, 24  # as lerobot_counter_robot draws the counter
JOINT_OFFSETS = np.arange(6) / 10  # joint j holds counter + j/10
TELEOP_OFFSET = 0.05  # the teleop's action: counter + j/10 + 0.05


def read_counter(img: np.ndarray) -> int:
    """The counter drawn into an RGB HWC uint8 frame of any width."""
    width = img.shape[1] // BITS
    margin = max(1, width // 4)
    lit = [img[8:BLOCK_H, bit * width + margin : (bit + 1) * width - margin].mean() > 127
           for bit in range(BITS)]  # fmt: skip
    return sum(1 << bit for bit, on in enumerate(lit) if on)


@dataclass
class Loaded:
    """A counter dataset as LeRobot loads it: its rows (numpy columns) and each episode's
    counters, in order."""

    rows: dict[str, np.ndarray]
    episodes: list[np.ndarray]

    @property
    def counters(self) -> np.ndarray:
        return np.rint(self.rows["observation.state"][:, 0]).astype(int)

    @property
    def num_frames(self) -> int:
        return len(self.counters)


def load_in_place(root: Path, repo_id: str = "local/shmpipe_counter",
                  consecutive: bool = True) -> Loaded:  # fmt: skip
    """LeRobot's LeRobotDataset loads `root`; each episode's rows count up by one (with
    `consecutive=False`, up: a loop may skip recording ticks, as DAgger's pause does); every
    camera's video holds exactly the episode's rows, each decoded frame showing its row's
    counter; LeRobot's own decoder returns the right frame for each episode's first and last
    row. Raises AssertionError naming the episode and camera otherwise."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset(repo_id, root=root, video_backend="pyav")
    table = ds.hf_dataset.with_format(None)
    rows = {name: np.array(table[name]) for name in table.column_names}
    state = rows["observation.state"].astype(np.float64)
    counters = np.rint(state[:, 0]).astype(int)
    assert np.allclose(state - counters[:, None], JOINT_OFFSETS, atol=1e-3)
    episodes = []
    for ep in range(ds.num_episodes):
        where = np.flatnonzero(rows["episode_index"] == ep)
        want = counters[where]
        steps = np.diff(want)
        assert len(want) and np.all(steps == 1 if consecutive else steps >= 1), f"episode {ep}"
        for key in ds.meta.video_keys:
            got = decoded_counters(root, ds.meta, ep, key)
            assert got == want.tolist(), f"{key} episode {ep}: frames {got} != rows {want}"
            for index in (where[0], where[-1]):  # through LeRobot's own decoder and lookup
                image = ds[int(index)][key].numpy()  # (3, h, w) float in [0, 1]
                rgb = np.rint(image.transpose(1, 2, 0) * 255).astype(np.uint8)
                assert read_counter(rgb) == counters[index], (key, ep, int(index))
        episodes.append(want)
    return Loaded(rows, episodes)


def decoded_counters(root: Path, meta, episode: int, key: str) -> list[int]:
    """The counters of the frames of `key`'s video inside the episode's time span."""
    import av

    info = meta.episodes[episode]
    path = root / meta.video_path.format(
        video_key=key, chunk_index=info[f"videos/{key}/chunk_index"],
        file_index=info[f"videos/{key}/file_index"])  # fmt: skip
    start, end = info[f"videos/{key}/from_timestamp"], info[f"videos/{key}/to_timestamp"]
    got = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if start - 1e-3 <= t < end - 1e-3:
                got.append(read_counter(frame.to_ndarray(format="rgb24")))
    return got
