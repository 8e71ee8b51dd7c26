"""shmpipe as LeRobot's recording dataset: `LeRobotRecorder`, a drop-in for `LeRobotDataset`,
and `install()`, which makes LeRobot's own lerobot-record (0.4.x and main) and lerobot-rollout
(0.6+) record through it."""

from shmpipe.integrations.lerobot.recorder import LeRobotRecorder as LeRobotRecorder
from shmpipe.integrations.lerobot.swap import Installed as Installed
from shmpipe.integrations.lerobot.swap import LeRobotMissing as LeRobotMissing
from shmpipe.integrations.lerobot.swap import install as install

__all__ = ["Installed", "LeRobotMissing", "LeRobotRecorder", "install"]
