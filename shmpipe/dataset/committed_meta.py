"""tasks.parquet, stats.json and meta/shmpipe/state.npz as the committed episodes have them.

meta/info.json is the commit point; these three files are replaced by a commit before it, so a
commit that fails (or a process that dies) between them and info.json leaves them ahead of what
info.json counts. The writer keeps here what the committed episodes add up to (the task list
and the dataset's stats state), reloads it when it opens a dataset, and puts the three files
back to it after a commit that did not happen.
"""

from __future__ import annotations

from pathlib import Path

from shmpipe.dataset import layout
from shmpipe.dataset.episode_commit import EpisodeCommit
from shmpipe.dataset.feature_types import FeatureSpec
from shmpipe.dataset.files import sync_folders, write_atomically
from shmpipe.dataset.meta_tables import TaskList
from shmpipe.dataset.resume import empty_stats, saved_stats
from shmpipe.dataset.state import save_state
from shmpipe.dataset.stats import DatasetStats, counts_in, stats_json
from shmpipe.dataset.untrusted import file_problem
from shmpipe.stats.columns import Stats


class CommittedMeta:
    """The task list and stats state of the committed episodes of the dataset at `root`
    (`info` lays them out; `linked`: the writer's folders known durable, files.py)."""

    def __init__(self, root: Path, info: dict, features: dict[str, FeatureSpec], cameras,
                 linked: set[Path]) -> None:  # fmt: skip
        self.root, self._linked = root, linked
        self.tasks = TaskList(root / layout.TASKS_PATH)
        self.stats: DatasetStats = empty_stats(info, features, cameras)
        self.ahead = False  # stats.json or state.npz count an episode not committed

    def reload(self, info: dict, episodes: int, frames: int) -> None:
        """Read back the tasks and the stats state of the `episodes` committed episodes
        (meta/shmpipe/state.npz, or one scan of the dataset if it is missing or stale), and
        note whether stats.json is out of step with info.json (a commit died between them):
        restore() then puts tasks.parquet, stats.json and state.npz back."""
        self.tasks.load(info["total_tasks"])
        stats_path, rebuilt = self.root / layout.STATS_PATH, False
        if episodes:
            self.stats, rebuilt = saved_stats(self.root, self.stats, episodes, frames)
        if episodes == 0:
            self.ahead = stats_path.exists()
        else:  # rebuilt: stats.json may be another writer's (LeRobot's quantiles); ours then
            counts = {name: s["count"].tolist() for name, s in self.stats.stats().items()}
            text = stats_path.read_text() if file_problem(stats_path) is None else ""
            self.ahead = rebuilt or counts_in(text) != counts

    def dropped(self, staged: EpisodeCommit | None) -> None:
        """The writer forgets `staged`, not committed: if it had begun to put its files in
        place, stats.json and state.npz may count it (restore() puts them back)."""
        if staged is not None and staged.renaming:
            self.ahead = True

    def committed(self, stats: DatasetStats) -> None:
        """An episode was committed: `stats` is the dataset's stats state with it."""
        self.stats, self.ahead = stats, False

    def restore(self, info: dict, episodes: int) -> None:
        """Put tasks.parquet, stats.json and state.npz back to what info.json (`info`, which
        counts `episodes` episodes) counts."""
        self.tasks.save()
        if self.ahead:
            _write_stats(self.root, self.stats.stats() if episodes else None)
            self._save_state(info, episodes)
            self.ahead = False

    def _save_state(self, info: dict, episodes: int) -> None:
        """state.npz of the committed episodes (none yet: no file), durable before return."""
        path = self.root / layout.STATE_PATH
        if episodes == 0:
            path.unlink(missing_ok=True)
            return
        save_state(self.root, info, self.stats.to_arrays())
        sync_folders([path], self.root, self._linked)


def _write_stats(root: Path, stats: dict[str, Stats] | None) -> None:
    """stats.json holding `stats` (None: no file)."""
    path = root / layout.STATS_PATH
    if stats is None:
        path.unlink(missing_ok=True)
    else:
        text = stats_json(stats).encode()
        write_atomically(path, lambda f: f.write(text))
