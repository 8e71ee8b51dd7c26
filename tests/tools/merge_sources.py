"""Three datasets to merge, laid out as LeRobot's reference dataset: two recorded by shmpipe
(their raw frames can be made again, for exact image stats), and the reference itself, which
LeRobot 0.4.4's writer made. Tasks overlap, so the merged table remaps them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shmpipe import Pipeline
from tests.helpers.frames import textured_frame
from tests.helpers.paths import REFERENCE

CAMS = {"observation.images.cam0": (96, 128, 3), "observation.images.cam1": (96, 128, 3)}
FEATS = {"observation.state": (6,), "action": (6,)}
NAMES = {k: [f"j{i}" for i in range(6)] for k in FEATS}
# name -> (episodes, frames per episode, seed, tasks by episode)
RECORDED = {"a": (3, 20, 1, ["pick", "place"]), "b": (2, 25, 2, ["place", "stack"])}


def raw_frame(seed: int, episode: int, camera: int, i: int) -> np.ndarray:
    return textured_frame(i, 96, 128, seed * 10 + episode * 3 + camera)


def record(root: Path, episodes: int, frames: int, seed: int, tasks: list[str]) -> None:
    rng = np.random.default_rng(seed)
    with Pipeline(root, fps=30, cameras=CAMS, features=FEATS, feature_names=NAMES,
                  backend="thread", robot_type="synthetic") as pipe:  # fmt: skip
        for e in range(episodes):
            for i in range(frames):
                images = {n: raw_frame(seed, e, k, i) for k, n in enumerate(CAMS)}
                values = {"observation.state": rng.normal(seed, 3, 6).astype(np.float32),
                          "action": rng.standard_cauchy(6).astype(np.float32)}  # fmt: skip
                pipe.add_frame({**images, **values}, task=tasks[e % len(tasks)])
            pipe.finish_episode()


def make_sources(folder: Path) -> list[Path]:
    for name, (episodes, frames, seed, tasks) in RECORDED.items():
        record(folder / name, episodes, frames, seed, tasks)
    return [folder / "a", folder / "b", REFERENCE]


def raw_frames(name: str) -> list[list[np.ndarray]]:
    """[episode][frame] -> (camera0, camera1) stacked along a new first axis, as recorded."""
    episodes, frames, seed, _ = RECORDED[name]
    return [[np.stack([raw_frame(seed, e, k, i) for k in range(len(CAMS))])
             for i in range(frames)] for e in range(episodes)]  # fmt: skip
