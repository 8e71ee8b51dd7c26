"""What LeRobot 0.4.x's lerobot-record reads of its dataset beyond LeRobot main's API."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path


def warm_headless_check() -> None:
    """LeRobot 0.4.x's record() first asks `is_headless()` (cached) in its `finally`; without a
    display that prints pynput's ImportError with `traceback.print_exc()`, chained to whatever
    exception is in flight, so a one-line refusal of shmpipe's became a full traceback. Asked
    once before record() runs, the answer is cached and nothing is in flight. LeRobot 0.5+ has
    no such call; nothing happens there."""
    try:
        control_utils = import_module("lerobot.utils.control_utils")
    except ImportError:
        return
    check = getattr(control_utils, "is_headless", None)
    if check is not None and hasattr(check, "cache_info"):  # 0.4's @cache'd function
        check()


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
