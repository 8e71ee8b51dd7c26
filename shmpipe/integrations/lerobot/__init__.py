"""shmpipe as LeRobot's recording dataset: `LeRobotRecorder`, a drop-in for `LeRobotDataset`."""

from shmpipe.integrations.lerobot.recorder import LeRobotRecorder as LeRobotRecorder

__all__ = ["LeRobotRecorder"]
