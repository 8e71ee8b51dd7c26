"""`shmpipe verify`: is a LeRobot v3.0 dataset on disk whole, frame for frame?

Works on any v3.0 layout: episodes are found through meta/episodes (chunk/file indices, row
ranges, video time ranges), so one file per episode (shmpipe) and many episodes per file
(LeRobot's writer) read alike. Each data and video file is read once; videos on every core.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe.dataset import capture_times, layout
from shmpipe.dataset.info import is_camera
from shmpipe.dataset.reader import EPISODE_COLUMNS, EPISODES_GLOB, episodes_files
from shmpipe.errors import ConfigError
from shmpipe.tools.verify import rows as verify_rows
from shmpipe.tools.verify import stats as verify_stats
from shmpipe.tools.verify import video as verify_video

INFO, STATS, TASKS = layout.INFO_PATH, layout.STATS_PATH, layout.TASKS_PATH
EPISODES_DIR = "meta/episodes"
NOT_NUMERIC = ("video", "image", "string")


class NotADatasetError(ConfigError):
    """The folder holds no readable LeRobot v3.0 meta/info.json."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with where it is (None where it is not about one episode/camera/file)."""

    message: str
    episode: int | None = None
    camera: str | None = None
    file: str | None = None

    def line(self) -> str:
        where = [
            f"episode {self.episode}" if self.episode is not None else None,
            f"camera {self.camera}" if self.camera else None,
            self.file,
        ]
        return ", ".join(w for w in where if w) + ": " + self.message


@dataclass
class VerifyReport:
    """What verify_dataset found: the dataset's size, and every problem (none: it is whole)."""

    root: Path
    episodes: int = 0
    frames: int = 0
    cameras: int = 0
    video_frames: int = 0  # frames found in the video files
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [p.line() for p in self.problems]
        rate = self.video_frames / self.seconds if self.seconds > 0 else 0.0
        lines.append(
            f"checked {self.video_frames} video frames in {self.seconds:.2f} s "
            f"({rate:.0f} frames/s)"
        )
        if self.ok:
            lines.append(
                f"OK: {self.episodes} episodes, {self.frames} frames, {self.cameras} cameras"
            )
        else:
            lines.append(f"FAILED: {len(self.problems)} problems")
        return "\n".join(lines)

    def as_json(self) -> dict:
        out = {"ok": self.ok, "root": str(self.root)}
        out.update({k: v for k, v in asdict(self).items() if k != "root"})
        return out


def verify_dataset(root: str | Path, decode: bool = False) -> VerifyReport:
    """Check the LeRobot v3.0 dataset at `root`; raises NotADatasetError if it is none.

    `decode=True` decodes every video frame rather than counting packets (slower)."""
    started = time.perf_counter()
    check = _Check(Path(root))
    if check.episodes or check.info.get("total_episodes") != 0:  # else: created, nothing saved
        check.totals()
        check.rows()
        check.videos(decode)
        check.stats()
    report = check.report
    report.seconds = time.perf_counter() - started
    return report


class _Check:
    """One verification run: the dataset's metadata, the data files read so far, the report."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.info = _read_info(root)
        self.fps = float(self.info["fps"])
        features = self.info["features"]
        self.cameras = [n for n, f in features.items() if is_camera(f)]
        self.report = VerifyReport(root, cameras=len(self.cameras))
        self.episodes = self._read_episodes()
        self.report.episodes = len(self.episodes)
        self.report.frames = sum(e["length"] for e in self.episodes)
        self.tables: dict[str, pa.Table] = {}  # data files by path relative to root
        self.rows_whole = False  # every episode's rows were read and found right

    def problem(self, message: str, episode=None, camera=None, file=None) -> None:
        self.report.problems.append(Problem(message, episode, camera, file))

    def _read_episodes(self) -> list[dict]:
        files = episodes_files(self.root)
        if not files and self.info.get("total_episodes") != 0:
            self.problem(f"no {EPISODES_GLOB}", file=EPISODES_DIR)
        rows: list[dict] = []
        for path in files:
            try:
                rows += pq.read_table(path).to_pylist()
            except (pa.ArrowException, OSError) as error:
                self.problem(f"unreadable: {error}", file=self._name(path))
        missing = sorted({c for e in rows for c in EPISODE_COLUMNS if c not in e})
        if missing:
            self.problem(f"columns missing: {', '.join(missing)}", file=EPISODES_DIR)
            return []
        rows.sort(key=lambda e: e["episode_index"])
        numbers = [e["episode_index"] for e in rows]
        if numbers != list(range(len(rows))):
            self.problem(f"episode indices are not 0..{len(rows) - 1}", file=EPISODES_DIR)
        return rows

    def _name(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def totals(self) -> None:
        """info.json's totals against meta/episodes, the data files and meta/tasks.parquet."""
        tasks = self.root / TASKS
        try:
            task_count = pq.ParquetFile(tasks).metadata.num_rows
        except (pa.ArrowException, OSError) as error:
            self.problem(f"unreadable: {error}", file=TASKS)
            task_count = None
        for key, found in (
            ("total_episodes", self.report.episodes),
            ("total_frames", self.report.frames),
            ("total_tasks", task_count),
        ):
            if found is not None and self.info.get(key) != found:
                self.problem(f"{key} is {self.info.get(key)}, found {found}", file=INFO)

    def rows(self) -> None:
        """Each episode's data rows: one block, frame_index 0..n-1, timestamps i/fps, and the
        global index contiguous across episodes; no rows of unlisted episodes."""
        problems_before = len(self.report.problems)
        next_index = 0
        listed: dict[str, list[int]] = {}  # data file -> its episodes
        for e in self.episodes:
            ep, length = e["episode_index"], e["length"]
            start, end = e["dataset_from_index"], e["dataset_to_index"]
            file = self.info["data_path"].format(
                chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]
            )
            listed.setdefault(file, []).append(ep)
            if start != next_index or end - start != length:
                self.problem(
                    f"rows [{start}, {end}) in meta/episodes, expected "
                    f"[{next_index}, {next_index + length}) for length {length}",
                    ep,
                    file=file,
                )
            next_index = end
            table = self._table(file, ep)
            if table is not None:
                for message in verify_rows.episode_problems(table, ep, length, start, self.fps):
                    self.problem(message, ep, file=file)
        for file, table in self.tables.items():
            unlisted = verify_rows.unlisted_rows(table, listed[file])
            if unlisted:
                self.problem(f"{unlisted} rows of episodes not in meta/episodes", file=file)
        self.rows_whole = len(self.report.problems) == problems_before

    def _table(self, file: str, episode: int) -> pa.Table | None:
        if file not in self.tables:
            path = self.root / file
            if not path.is_file():
                self.problem("data file missing", episode, file=file)
                return None
            try:
                self.tables[file] = pq.read_table(path)
            except (pa.ArrowException, OSError) as error:
                self.problem(f"unreadable: {error}", episode, file=file)
                return None
        return self.tables[file]

    def videos(self, decode: bool) -> None:
        """Each camera's frames of each episode: the count and the time of every frame."""
        wanted: dict[tuple[int, str], tuple[str, tuple[float, float], int]] = {}
        for e in self.episodes:
            for camera in self.cameras:
                key = f"videos/{camera}/"
                try:
                    file = self.info["video_path"].format(
                        video_key=camera,
                        chunk_index=e[key + "chunk_index"],
                        file_index=e[key + "file_index"],
                    )
                    window = (e[key + "from_timestamp"], e[key + "to_timestamp"])
                except KeyError as error:
                    self.problem(f"meta/episodes has no {error}", e["episode_index"], camera)
                    continue
                wanted[e["episode_index"], camera] = (file, window, e["length"])
        present = sorted({f for f, _, _ in wanted.values() if (self.root / f).is_file()})
        read = verify_video.read_all([self.root / f for f in present], decode)
        videos = dict(zip(present, read, strict=True))
        self.report.video_frames = sum(len(v.times) for v in videos.values())
        unexplained = {f for f, v in videos.items() if v.error}  # read errors not yet reported
        for (ep, camera), (file, (start, end), length) in wanted.items():
            if file not in videos:
                self.problem("video file missing", ep, camera, file)
                continue
            video = videos[file]
            found = verify_video.episode_problems(video.times, start, end, length, self.fps)
            if found and video.error:  # the frames this episode misses may be behind the error
                found[0] += f"; {video.error}"
                unexplained.discard(file)
            for message in found:
                self.problem(message, ep, camera, file)
        for file in sorted(unexplained):
            camera = next(c for (_, c), (f, _, _) in wanted.items() if f == file)
            self.problem(videos[file].error, camera=camera, file=file)

    def stats(self) -> None:
        """stats.json against the merged per-episode stats; for shmpipe's datasets, exactly
        against numpy over every row of the numeric features."""
        try:
            dataset_stats = json.loads((self.root / STATS).read_text())
        except (OSError, ValueError) as error:
            self.problem(f"unreadable: {error}", file=STATS)
            return
        found = verify_stats.merge_problems(dataset_stats, self.episodes)
        if "shmpipe" in self.info and self.rows_whole:  # else the rows are not the dataset's
            found += verify_stats.exact_problems(dataset_stats, self._numeric_rows())
        for feature, message in found:
            camera = feature if feature in self.cameras else None
            self.problem(f"{feature} {message}", camera=camera, file=STATS)

    def _numeric_rows(self) -> dict[str, np.ndarray]:
        """(frames, dims) float64 values of every numeric feature, over all data files."""
        skip = capture_times.columns_of(self.info)  # no stats: seconds of a clock
        names = [n for n, f in self.info["features"].items()
                 if f.get("dtype") not in NOT_NUMERIC and n not in skip]  # fmt: skip
        tables = [self.tables[f] for f in sorted(self.tables)]
        return {
            name: np.concatenate([verify_rows.matrix(t.column(name)) for t in tables])
            for name in names
            if all(name in t.column_names for t in tables)
        }


def _read_info(root: Path) -> dict:
    path = root / INFO
    if not root.is_dir():
        raise NotADatasetError(f"{root} is not a folder")
    try:
        info = json.loads(path.read_text())
    except OSError:
        raise NotADatasetError(f"{root} is not a LeRobot dataset: no {INFO}") from None
    except ValueError as error:
        raise NotADatasetError(f"{path} is not valid JSON: {error}") from None
    version = info.get("codebase_version") if isinstance(info, dict) else None
    if version != "v3.0":
        raise NotADatasetError(
            f"{root} is not a LeRobot v3.0 dataset (codebase_version {version!r})"
        )
    missing = [k for k in ("fps", "features", "data_path", "video_path") if k not in info]
    if missing:
        raise NotADatasetError(f"{path} lacks {', '.join(missing)}")
    return info
