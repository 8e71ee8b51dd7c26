"""A mock robot and teleoperator for LeRobot's lerobot-record (0.4.x, 0.6.x) and lerobot-rollout
(0.6.x), loaded as a LeRobot plugin:

    shmpipe lerobot-record --robot.discover_packages_path=lerobot_counter_robot \
        --robot.type=shmpipe_counter --teleop.type=shmpipe_counter_teleop ...

(this folder's parent on PYTHONPATH). Importing it registers the two configs with LeRobot's
registries and makes lerobot_record's (and, where present, lerobot-rollout's) robot/teleop
factories build them. The robot has two 240x320 cameras (`--robot.camera_names='[front]'`,
`--robot.height=720 --robot.width=1280` change them) and six joints; every get_observation()
advances a counter, drawn into every image as 16 black/white blocks (robust to AV1) and stored
in the joints as counter + j/10; the teleop's action is counter + j/10 + 0.05.
SHMPIPE_TEST_FAIL_AT=N makes the robot raise RuntimeError at counter N (a failure inside the
record loop).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from lerobot.robots import Robot, RobotConfig
from lerobot.scripts import lerobot_record
from lerobot.teleoperators import Teleoperator, TeleoperatorConfig

H, W, BITS, BLOCK_H = 240, 320, 16, 24
CAMERAS = ("front", "wrist")
JOINTS = [f"{m}.pos" for m in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex",
                               "wrist_roll", "gripper")]  # fmt: skip
_state = {"counter": -1}


@cache
def _ramps(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(w, dtype=np.int64), np.arange(h, dtype=np.int64)[:, None]


def draw_counter(counter: int, camera: int, h: int = H, w: int = W) -> np.ndarray:
    xx, yy = _ramps(h, w)
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[..., 0] = (xx + counter * 3) % 256  # camera-like background that moves
    img[..., 1] = (yy + camera * 80) % 256
    img[..., 2] = 128
    img[: BLOCK_H + 8] = 0
    width = w // BITS
    for bit in range(BITS):
        if (counter >> bit) & 1:
            img[4 : 4 + BLOCK_H, bit * width + 2 : (bit + 1) * width - 2] = 255
    return img


@RobotConfig.register_subclass("shmpipe_counter")
@dataclass(kw_only=True)
class CounterRobotConfig(RobotConfig):
    camera_names: list[str] = field(default_factory=lambda: list(CAMERAS))
    height: int = H
    width: int = W


@TeleoperatorConfig.register_subclass("shmpipe_counter_teleop")
@dataclass(kw_only=True)
class CounterTeleopConfig(TeleoperatorConfig):
    pass


class _Connectable:
    _connected = False
    is_calibrated = True

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def calibrate(self) -> None:
        pass

    def configure(self) -> None:
        pass


class CounterRobot(_Connectable, Robot):
    config_class = CounterRobotConfig
    name = "shmpipe_counter"

    def __init__(self, config):
        super().__init__(config)
        self.cameras = dict.fromkeys(config.camera_names)  # record() sizes its writer from this
        self.shape = (config.height, config.width, 3)

    @property
    def observation_features(self) -> dict:
        return {**dict.fromkeys(JOINTS, float), **dict.fromkeys(self.cameras, self.shape)}

    @property
    def action_features(self) -> dict:
        return dict.fromkeys(JOINTS, float)

    def get_observation(self) -> dict:
        _state["counter"] += 1
        n = _state["counter"]
        if str(n) == os.environ.get("SHMPIPE_TEST_FAIL_AT"):
            raise RuntimeError(f"mock robot: injected failure at counter {n}")
        obs = {j: float(n) + i / 10 for i, j in enumerate(JOINTS)}
        for k, camera in enumerate(self.cameras):
            obs[camera] = draw_counter(n, k, *self.shape[:2])
        return obs

    def send_action(self, action):
        return action


class CounterTeleop(_Connectable, Teleoperator):
    config_class = CounterTeleopConfig
    name = "shmpipe_counter_teleop"

    @property
    def action_features(self) -> dict:
        return dict.fromkeys(JOINTS, float)

    @property
    def feedback_features(self) -> dict:
        return {}

    def get_action(self) -> dict:
        return {j: float(_state["counter"]) + i / 10 + 0.05 for i, j in enumerate(JOINTS)}

    def send_feedback(self, feedback) -> None:
        pass


def _factory(real, config_class, cls):
    def make(config):
        return cls(config) if isinstance(config, config_class) else real(config)

    return make


def _patch_factories(module) -> None:
    module.make_robot_from_config = _factory(
        module.make_robot_from_config, CounterRobotConfig, CounterRobot)
    module.make_teleoperator_from_config = _factory(
        module.make_teleoperator_from_config, CounterTeleopConfig, CounterTeleop)


_patch_factories(lerobot_record)
with contextlib.suppress(ImportError):  # lerobot-rollout: LeRobot 0.6+
    _patch_factories(importlib.import_module("lerobot.rollout.context"))
