"""Uploading a dataset folder to the Hugging Face Hub as LeRobot does (LeRobotRecorder.push_to_hub).

huggingface_hub is LeRobot's own dependency, imported only here and only when asked to push.
"""

from __future__ import annotations

from pathlib import Path

from shmpipe.dataset import layout
from shmpipe.video import segments

# not uploaded: LeRobot's temporary images, our writer lock and backlog spill files, and the
# files of an episode still recording or committing (an encoder's segments and join, staged
# files, pack's): lerobot-rollout's sentry pushes in a background thread while it records.
# huggingface_hub matches with fnmatch, `*` crossing `/` (utils.filter_repo_objects).
HUB_IGNORE = ["images/", layout.LOCK_PATH, layout.SPILL_DIR + "/",
              f"*{segments.SEGMENT}*", f"*{segments.JOINING}", f"*{layout.STAGED}",
              f"*{layout.PACKING}"]  # fmt: skip


def push_folder(root: Path, repo_id: str, version: str, branch: str | None, tag_version: bool,
                push_videos: bool, private: bool | None, allow_patterns,
                upload_large_folder: bool) -> None:  # fmt: skip
    """Create the dataset repo, upload `root`, and tag it with the codebase `version`."""
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import RevisionNotFoundError
    except ImportError:
        raise ImportError("push_to_hub needs huggingface_hub (pip install huggingface_hub); "
                          f"{root} is complete without it") from None  # fmt: skip
    ignore = HUB_IGNORE + ([] if push_videos else ["videos/"])
    api = HfApi()
    api.create_repo(repo_id=repo_id, private=private, repo_type="dataset", exist_ok=True)
    if branch:
        api.create_branch(repo_id=repo_id, branch=branch, repo_type="dataset", exist_ok=True)
    upload = api.upload_large_folder if upload_large_folder else api.upload_folder
    upload(repo_id=repo_id, folder_path=root, repo_type="dataset", revision=branch,
           allow_patterns=allow_patterns, ignore_patterns=ignore)  # fmt: skip
    if tag_version:
        try:
            api.delete_tag(repo_id, tag=version, repo_type="dataset")
        except RevisionNotFoundError:
            pass
        api.create_tag(repo_id, tag=version, revision=branch, repo_type="dataset")


class HubUpload:
    """LeRobotDataset.push_to_hub for a recorder with `root`, `repo_id` and `meta.info`."""

    def push_to_hub(
        self,
        branch: str | None = None,
        tags: list | None = None,
        license: str | None = "apache-2.0",
        tag_version: bool = True,
        push_videos: bool = True,
        private: bool | None = None,
        allow_patterns: list[str] | str | None = None,
        upload_large_folder: bool = False,
        **card_kwargs,
    ) -> None:
        """Upload `root` to the Hub dataset repo `repo_id` as LeRobot does (create the repo,
        upload the folder, tag the codebase version), with huggingface_hub (LeRobot's own
        dependency). Differences: no dataset card is written (tags, license and card_kwargs are
        unused), and each episode is its own file (many files for a large dataset). Episodes
        saved so far are committed first (save_episode commits in the background)."""
        self.meta.settle(wait=True)
        push_folder(self.root, self.repo_id, self.meta.info["codebase_version"], branch,
                    tag_version, push_videos, private, allow_patterns,
                    upload_large_folder)  # fmt: skip
