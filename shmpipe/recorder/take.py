"""One take: an episode's life in the control process, held in one object with one state.

A take is one attempt at an episode: it has its own number (workers key everything on it: a
discarded episode's index is reused, its take number never) and the episode index it would
commit as. It owns the rows, each camera's counts since it opened and the rate meters status()
reads (shmpipe.recorder.camera_counts), the workers' failures, and what a replaced worker must
be told again. Transitions are methods; each checks the state it starts from and an illegal one
raises UsageError naming both.

    IDLE --open--> OPEN --begin_finish--> FINISHING --committed--> COMMITTED
                    |  ^                      |
         a worker   |  | (more failures       | a worker failed / anything raised
         failed     v  |  are only noted)     v
                   FAILED ----------------> DISCARDED <-- discard (from OPEN, FAILED, FINISHING)

With rolling capture (shmpipe.recorder.rolling) a take opens ROLLING instead of OPEN: frames
are added into the window, and `keep` (ROLLING -> OPEN) makes the window's last N s the start of
the episode; a ROLLING take fails, is discarded and is replayed like an OPEN one, but cannot
finish before it is kept.

COMMITTED and DISCARDED are final: `successor` makes the next take (IDLE, number + 1). A FAILED
take refuses frames (refused_frame) and cannot finish (begin_finish raises its failure): the
caller discards it.

The walk of `Pipeline.finish_episode` (shmpipe.recorder.finish; `python -m bench.finish_walk`
prints it from a trace, tests/recorder/test_finish_walk.py checks it): each step is one call from
finish into one module, which returns before the next; none calls back into a module still on
the stack, and only finish calls the dataset's commit steps:

    pipeline -> finish -> supervisor (health) -> take (begin_finish: FINISHING)
      -> supervisor (FinishEpisode to every worker) -> dataset (stage: the data file)
      -> supervisor (await the stats worker) -> session (histograms)
      -> dataset (metadata, the videos' early sync) -> supervisor (await the encoders)
      -> dataset (commit: info.json) -> take (COMMITTED) -> results (EpisodeResult)

(while it awaits replies, finish also has the session feed backlogged frames into the rings).
"""

from __future__ import annotations

import enum
import errno
import logging
from collections.abc import Callable, Iterable

import msgspec

from shmpipe import messages
from shmpipe.dataset.rows import EpisodeRows
from shmpipe.errors import DatasetError, ShmpipeError, UsageError, WorkerError
from shmpipe.recorder.camera_counts import CameraCounts
from shmpipe.recorder.camera_feed import CameraFeed
from shmpipe.recorder.rolling import Roll
from shmpipe.recorder.worker_handle import WorkerRole, encoder_for

log = logging.getLogger("shmpipe")


class TakeState(enum.Enum):
    IDLE = "idle"  # numbered, nothing told to the workers yet
    OPEN = "open"  # frames are added
    ROLLING = "rolling"  # frames are added into the rolling window, not (yet) kept
    FAILED = "failed"  # a worker failed: frames are refused until it is discarded
    FINISHING = "finishing"  # FinishEpisode sent; the commit steps run
    COMMITTED = "committed"  # part of the dataset (final)
    DISCARDED = "discarded"  # cancelled, or its finish failed: its files are gone (final)


IDLE, OPEN, FAILED = TakeState.IDLE, TakeState.OPEN, TakeState.FAILED
FINISHING, COMMITTED, DISCARDED = TakeState.FINISHING, TakeState.COMMITTED, TakeState.DISCARDED
ROLLING = TakeState.ROLLING
LIVE = frozenset({OPEN, FAILED, FINISHING, ROLLING})  # workers know of the take
ADDING = frozenset({OPEN, ROLLING})  # frames are added
FINAL = frozenset({COMMITTED, DISCARDED})
VideoPath = Callable[[str, int], object]  # (camera, episode index) -> where its video goes
# the disk refused a write: a DatasetError (the dataset's file system), not a worker's bug
DISK_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG, errno.EACCES, errno.EPERM}
)


class Take:
    """Take `number`, committing as episode `episode`; `rows` hold its numeric rows."""

    def __init__(self, number: int, episode: int, rows: EpisodeRows) -> None:
        self.number, self.episode, self.rows = number, episode, rows
        self.state = IDLE
        self.restarts = 0  # workers replaced while the workers knew of the take
        self.failures: dict[WorkerRole, messages.WorkerFailed] = {}  # the first of each worker
        self.counts = CameraCounts()  # each camera's frames, backlog and rates since open
        self._starts: dict[WorkerRole, messages.StartEpisode] = {}
        self._finish: messages.FinishEpisode | None = None
        self.roll: Roll | None = None  # rolling capture's window, if the take rolls

    def __repr__(self) -> str:
        return f"Take({self.number}, episode {self.episode}, {self.state.value})"

    @property
    def frames(self) -> int:
        """Frames (rows) added so far (rolling: in the window, or kept)."""
        return self.rows.num_frames

    @property
    def first_frame(self) -> int:
        """The frame index of the first row: frames before it were dropped by rolling."""
        return self.roll.dropped if self.roll is not None else 0

    def _move(self, action: str, allowed: Iterable[TakeState], to: TakeState) -> None:
        allowed = tuple(allowed)
        if self.state not in allowed:
            raise UsageError(
                f"take {self.number}: {action} goes from {'/'.join(s.name for s in allowed)} "
                f"to {to.name}, but the take is {self.state.name}"
            )
        self.state = to

    # -- transitions -----------------------------------------------------------------------
    def open(self, feeds: Iterable[CameraFeed], video_path: VideoPath, roll: Roll | None = None
             ) -> dict[WorkerRole, messages.StartEpisode]:  # fmt: skip
        """IDLE -> OPEN (ROLLING with a `roll`): note every camera's counters and return what
        each encoder is told (the caller sends them with signals deferred: a take is opened
        whole or not at all)."""
        if self.state is not IDLE:
            self._move("open", [IDLE], OPEN)
        feeds = list(feeds)
        counts, starts = CameraCounts(feeds), {}
        for feed in feeds:
            path = str(video_path(feed.name, self.episode))
            window = (roll.plan.window, roll.plan.segment) if roll is not None else (0, 0)
            starts[encoder_for(feed.name)] = messages.StartEpisode(self.number, path, *window)
        self.counts, self._starts = counts, starts
        self.roll, self.state = roll, OPEN if roll is None else ROLLING
        return dict(starts)

    def keep(self) -> dict[WorkerRole, messages.StartEpisode]:
        """ROLLING -> OPEN: the episode starts at the window's first frame (rolling); what
        each encoder is told again (it then deletes what came before). A FAILED take raises
        its failure: its window is lost (cancel_episode() rolls again)."""
        if self.state is FAILED:
            raise self.error("; the window cannot be kept: call cancel_episode() to roll again")
        self._move("keep", [ROLLING], OPEN)
        first = self.roll.keep(self.rows)
        for role, start in self._starts.items():
            self._starts[role] = msgspec.structs.replace(start, kept_from=first)
        return dict(self._starts)

    def make_room(self) -> None:
        """Room for one more row (rolling: the window's rows trimmed first)."""
        if self.roll is not None:
            self.roll.trim(self.rows)
        self.rows.ensure_room()

    def histograms(self, final: dict) -> dict:
        """The episode's image histograms from the stats worker's `final` tally of the take."""
        return final if self.roll is None else self.roll.kept_histograms(final)

    def note(self, role: WorkerRole, reply: object) -> None:
        """A worker's reply: its failure of this take turns OPEN or FINISHING into FAILED (the
        first failure of each worker is kept and logged); anything else changes nothing."""
        if not isinstance(reply, messages.WorkerFailed) or reply.take != self.number:
            return
        if self.state not in LIVE or role in self.failures:
            return
        self.failures[role] = reply
        self.state = FAILED
        log.error("%s failed: %s; the open episode cannot be saved (cancel it)", role,
                  reply.error)  # fmt: skip

    def begin_finish(self, feeds: Iterable[CameraFeed]) -> messages.FinishEpisode:
        """OPEN -> FINISHING: the FinishEpisode every worker is told. A FAILED take raises its
        failure instead; cameras that do not hold one frame per row raise WorkerError (the
        workers would wait for frames that cannot come). Either way the caller discards."""
        if self.state is FAILED:
            raise self.error()
        self.check_finishable()
        if self.state is not OPEN:
            self._move("begin_finish", [OPEN], FINISHING)
        feeds = list(feeds)
        if self.roll is not None:
            self.roll.settle(feeds)  # the kept frames' stats are exact after this
        first = self.first_frame
        counts = self.counts.frames(feeds)
        if any(count != first + self.frames for count in counts.values()):
            raise WorkerError(f"finish_episode(): episode {self.episode} has {self.frames} rows "
                              f"but camera frames {counts}; it cannot be saved whole and is "
                              "discarded")  # fmt: skip
        self.state = FINISHING
        self._finish = messages.FinishEpisode(self.number, first + self.frames)
        return self._finish

    def check_finishable(self) -> None:
        """A ROLLING take cannot finish (and stays ROLLING): nothing is kept yet."""
        if self.state is ROLLING:
            raise UsageError("finish_episode(): nothing is kept while rolling; call keep() "
                             "first (it keeps the pre-roll and what follows)")  # fmt: skip

    def committed(self) -> None:
        """FINISHING -> COMMITTED: the episode is part of the dataset."""
        self._move("committed", [FINISHING], COMMITTED)

    def discard(self) -> messages.CancelEpisode:
        """OPEN/FAILED/FINISHING -> DISCARDED: the CancelEpisode every worker is told. A worker
        replaced from now on is told nothing of the take (it skips its frames)."""
        self._move("discard", LIVE, DISCARDED)
        return messages.CancelEpisode(self.number)

    def successor(self, episode: int) -> Take:
        """The next take (IDLE), once this one is final; it reuses the rows' memory."""
        if self.state not in FINAL:
            raise UsageError(f"take {self.number}: successor goes from COMMITTED/DISCARDED to "
                             f"IDLE, but the take is {self.state.name}")  # fmt: skip
        self.rows.clear()
        return Take(self.number + 1, episode, self.rows)

    def follower(self, episode: int, rows: EpisodeRows) -> Take:
        """The next take (IDLE) while this one is FINISHING in the background: it gets its own
        `rows` (these are still being committed) and provisional episode index `episode`."""
        if self.state is not FINISHING:
            raise UsageError(f"take {self.number}: follower needs FINISHING, but the take is "
                             f"{self.state.name}")  # fmt: skip
        return Take(self.number + 1, episode, rows)

    def live_numbers(self) -> set[int]:
        """{number} while the workers know of the take (as LiveTakes.live_numbers)."""
        return {self.number} if self.state in LIVE else set()

    # -- frames ----------------------------------------------------------------------------
    def add(self, feeds: list[CameraFeed], staged: list, row, task_index: int, times) -> int:
        """Commit a staged frame in every camera and its row (all or nothing: the caller defers
        signals; nothing here can fail once the state is OPEN); its frame index."""
        if self.state not in ADDING:
            self._move("add", ADDING, OPEN)
        index = self.first_frame + self.rows.num_frames
        number = self.number
        for feed, where in zip(feeds, staged, strict=True):
            feed.commit(where, number, index)
        self.rows.append(row, task_index, times)
        return index

    def refused_frame(self) -> ShmpipeError:
        """What add_frame raises while the take has a failure: the frame is not added."""
        return self.error(f"; episode {self.episode} cannot be saved and the frame was not "
                          "added: call cancel_episode() (finish_episode() raises this and "
                          "discards it)")  # fmt: skip

    # -- what the take knows ---------------------------------------------------------------
    def replay(self, role: WorkerRole) -> list:
        """What a worker replacing `role` must be told of the take, in order (counted)."""
        if self.state not in LIVE:
            return []
        self.restarts += 1
        told = [self._starts[role]] if role in self._starts else []
        return told + ([self._finish] if self.state is FINISHING else [])

    def error(self, hint: str = "") -> ShmpipeError:
        """The first failure as an exception: DatasetError if the disk refused, else
        WorkerError. A worker's failure is noted the moment it reports it (an encoder that
        cannot open its codec or write its file), so add_frame raises it at once."""
        for role, failed in self.failures.items():
            kind = DatasetError if failed.errno in DISK_ERRNOS else WorkerError
            return kind(f"{role} failed: {failed.error}{hint}")
        raise UsageError(f"take {self.number}: no worker failed (the take is {self.state.name})")

    def message_of(self, role: WorkerRole) -> str:
        failed = self.failures.get(role)
        return "" if failed is None else failed.error
