"""finish_episode's share of the commit, done while the encoders flush.

Once FinishEpisode is out the rows are final, so the data file can be written at once; once the
stats worker's EpisodeDone is in, the stats and every metadata file but info.json; then the
videos' bytes written so far can be synced. Only what depends on the finished videos waits for
the encoders: their sync and meta/info.json, the commit point (DatasetWriter.commit_staged).
"""

from __future__ import annotations

from shmpipe.dataset.episode_commit import CommitState, EpisodeCommit
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.dataset.writer import CommittedEpisode, DatasetWriter
from shmpipe.recorder.session import Session
from shmpipe.recorder.worker_handle import STATS_WORKER


class EarlyCommit:
    """Supervisor.finish_take's `between` for one episode: each call feeds backlogged frames
    into the rings, then takes at most one step that is ready, so replies are still read
    between steps. `commit` takes the steps left and commits, once every worker is done."""

    def __init__(self, session: Session, dataset: DatasetWriter, episode: int,
                 rows: EpisodeRows) -> None:  # fmt: skip
        self._session, self._dataset = session, dataset
        self._episode, self._rows = episode, rows
        self._staged: EpisodeCommit | None = None
        self._synced = False

    def __call__(self, done: dict) -> None:
        self._session.drain_all()
        if self._staged is None:
            self._staged = self._dataset.stage_episode(self._episode, self._rows)
        elif self._staged.state is CommitState.DATA_STAGED and STATS_WORKER in done:
            self._staged.write_meta(self._session.histograms())
        elif not self._synced and self._staged.state is CommitState.META_STAGED:
            self._staged.sync_early()
            self._synced = True

    def commit(self) -> CommittedEpisode:
        """After every worker's EpisodeDone: the steps not taken yet, then the commit."""
        if self._staged is None:
            self._staged = self._dataset.stage_episode(self._episode, self._rows)
        if self._staged.state is CommitState.DATA_STAGED:
            self._staged.write_meta(self._session.histograms())
        return self._dataset.commit_staged(self._staged)
