"""What LeRobot 0.4.x's lerobot-record reads of its dataset beyond LeRobot main's API."""

from __future__ import annotations

from pathlib import Path


class LeRobot04Attributes:
    """What LeRobot 0.4.x's lerobot-record reads of its dataset beyond main's API (read in
    lerobot 0.4.4's source; line numbers are that release's). None of it does any work here:
    frames are encoded while recording, and no temporary images exist."""

    # datasets/video_utils.py:1071 VideoEncodingManager.__exit__: episodes left to batch-encode
    episodes_since_last_encoding = 0
    batch_encoding_size = 1
    # video_utils.py:1064 (getattr): None keeps VideoEncodingManager off its streaming branch,
    # which would cancel and close an encoder
    _streaming_encoder = None
    # datasets/image_writer.py safe_stop_image_writer (getattr): no image writer to stop
    image_writer = None

    def start_image_writer(self, num_processes: int = 0, num_threads: int = 4) -> None:
        """scripts/lerobot_record.py:480 (--resume): no temporary images, nothing to start."""

    def stop_image_writer(self) -> None:
        """No temporary images, nothing to stop."""

    def _batch_save_episode_video(self, start_episode: int, end_episode: int | None = None):
        """video_utils.py:1083, reached only if episodes_since_last_encoding > 0: never."""

    def _get_image_file_path(self, episode_index: int, image_key: str, frame_index: int) -> Path:
        """video_utils.py:1093, after an exception: the folder of an episode's temporary images
        (LeRobot's layout), which VideoEncodingManager removes if it exists; it never does."""
        root: Path = self.root  # type: ignore[attr-defined]
        return (root / "images" / image_key / f"episode-{episode_index:06d}"
                / f"frame-{frame_index:06d}.png")  # fmt: skip
