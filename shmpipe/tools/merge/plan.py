"""What merging N datasets will do, decided before a file is written: that they can be merged
(same fps, the same features), the one task table, and where each source's episodes, rows and
files land in the output (offsets), so that each source can then be copied on its own, in any
order or on another machine, and the result is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe.dataset import capture_times, layout
from shmpipe.dataset.reader import read_episodes
from shmpipe.dataset.scan import Features
from shmpipe.dataset.untrusted import read_parquet
from shmpipe.errors import ConfigError
from shmpipe.tools.verify.reading import read_info

COMPARED = ("dtype", "shape", "names")
VIDEO_INFO = ("video.codec", "video.pix_fmt")


@dataclass
class SourcePlan:
    """One source and where its episodes go: everything its copy needs, picklable."""

    number: int  # its place among the sources
    root: Path
    info: dict
    episodes: int
    frames: int
    task_map: list[int]  # its task_index -> the output's
    first_episode: int
    first_index: int
    first_data_file: int
    first_video_file: dict[str, int] = field(default_factory=dict)
    data_files: int = 0  # output data files it makes (one per run of episodes in a file)
    video_files: dict[str, int] = field(default_factory=dict)


@dataclass
class MergePlan:
    sources: list[SourcePlan]
    features: Features
    tasks: list[str]
    info: dict  # the output's info.json
    schema: pa.Schema  # the output's data files

    @property
    def episodes(self) -> int:
        return sum(s.episodes for s in self.sources)


def plan_merge(roots: list[Path]) -> MergePlan:
    """ConfigError (one line naming the dataset and the feature) if they cannot be merged."""
    if not roots:
        raise ConfigError("merge: no source datasets given")
    if len(set(r.resolve() for r in roots)) != len(roots):
        raise ConfigError("merge: a source dataset is given twice")
    infos = [read_info(root) for root in roots]
    features = Features.of(infos[0], str(roots[0]))
    for root, info in zip(roots[1:], infos[1:], strict=False):
        _check_compatible(roots[0], infos[0], root, info)
    tasks: dict[str, int] = {}
    sources, episode, index, data = [], 0, 0, 0
    video = dict.fromkeys(features.cameras, 0)
    for number, (root, info) in enumerate(zip(roots, infos, strict=True)):
        texts = read_tasks(root)
        task_map = [tasks.setdefault(text, len(tasks)) for text in texts]
        source = SourcePlan(number, root, info, info["total_episodes"], info["total_frames"],
                            task_map, episode, index, data, dict(video))  # fmt: skip
        _count_files(source, list(features.cameras))
        sources.append(source)
        episode, index = episode + source.episodes, index + source.frames
        data += source.data_files
        video = {c: n + source.video_files[c] for c, n in video.items()}
    out_info = _output_info(infos[0], features, episode, index, len(tasks))
    schema = _schema(roots[0], infos[0], features)
    return MergePlan(sources, features, list(tasks), out_info, schema)


def read_tasks(root: Path) -> list[str]:
    """meta/tasks.parquet's texts in task_index order (the text column is pandas' index:
    `__index_level_0__`, or `task` as LeRobot 0.6 names it)."""
    table = read_parquet(root / layout.TASKS_PATH, layout.TASKS_PATH)
    text = next((n for n in table.column_names if pa.types.is_string(table.schema.field(n).type)
                 or pa.types.is_large_string(table.schema.field(n).type)), None)  # fmt: skip
    if text is None or "task_index" not in table.column_names:
        raise ConfigError(f"{root}: {layout.TASKS_PATH} has no task_index and task text columns")
    order = table.column("task_index").to_pylist()
    if sorted(order) != list(range(len(order))):
        raise ConfigError(f"{root}: {layout.TASKS_PATH}: task_index is not 0..{len(order) - 1}")
    texts = table.column(text).to_pylist()
    return [texts[order.index(i)] for i in range(len(order))]


def _describe(entry: dict) -> str:
    return " ".join(f"{k} {entry.get(k)!r}" for k in COMPARED)


def _check_compatible(first_root: Path, first: dict, root: Path, info: dict) -> None:
    if info["fps"] != first["fps"]:
        raise ConfigError(f"{root}: fps {info['fps']}, but {first_root} has fps {first['fps']}")
    mine, theirs = _features(info), _features(first)
    for name in [*theirs, *(n for n in mine if n not in theirs)]:
        if name not in mine or name not in theirs:
            where, other = (root, first_root) if name not in mine else (first_root, root)
            raise ConfigError(f"{where}: has no feature {name!r} ({other} has it)")
        a, b = mine[name], theirs[name]
        if any(a.get(k) != b.get(k) for k in COMPARED):
            raise ConfigError(f"{root}: feature {name!r} is {_describe(a)}, but {first_root} "
                              f"has {_describe(b)}")  # fmt: skip
        info_a, info_b = a.get("info") or {}, b.get("info") or {}
        for key in VIDEO_INFO if a.get("dtype") == "video" else ():
            if info_a.get(key) != info_b.get(key):
                raise ConfigError(f"{root}: feature {name!r} has {key} {info_a.get(key)!r}, but "
                                  f"{first_root} has {info_b.get(key)!r} (videos are copied, "
                                  "not re-encoded)")  # fmt: skip


def _features(info: dict) -> dict[str, dict]:
    """info.json's features but the capture-time columns (shmpipe's own, not merged)."""
    skip = set(capture_times.columns_of(info))
    return {n: e for n, e in info["features"].items() if n not in skip}


def _count_files(source: SourcePlan, cameras: list[str]) -> None:
    """How many data files (runs of episodes in one file) and video files (distinct, per
    camera) the source makes in the output, from its meta/episodes."""
    columns = ["data/chunk_index", "data/file_index"]
    for camera in cameras:
        columns += [f"videos/{camera}/chunk_index", f"videos/{camera}/file_index"]
    table = read_episodes(source.root, source.episodes, columns)

    def files(prefix: str) -> list[tuple[int, int]]:
        chunk = table.column(prefix + "chunk_index").to_pylist()
        return list(zip(chunk, table.column(prefix + "file_index").to_pylist(), strict=True))

    data = files("data/")
    source.data_files = sum(1 for i, f in enumerate(data) if i == 0 or data[i - 1] != f)
    source.video_files = {c: len(set(files(f"videos/{c}/"))) for c in cameras}


def _output_info(first: dict, features: Features, episodes: int, frames: int, tasks: int) -> dict:
    info = {k: v for k, v in first.items() if k != "shmpipe"}
    info.update(total_episodes=episodes, total_frames=frames, total_tasks=tasks,
                chunks_size=layout.CHUNKS_SIZE, splits={"train": f"0:{episodes}"},
                data_path=layout.DATA_PATH, video_path=layout.VIDEO_PATH)  # fmt: skip
    info["features"] = {n: e for n, e in _features(first).items()}
    return info


def _schema(root: Path, info: dict, features: Features) -> pa.Schema:
    """The first source's data schema (its `huggingface` metadata too), capture times out."""
    table = read_episodes(root, 1, ["data/chunk_index", "data/file_index"]) if info[
        "total_episodes"] else None  # fmt: skip
    if table is None:
        raise ConfigError(f"{root}: has no episodes")
    path = root / info["data_path"].format(chunk_index=table.column(1)[0].as_py(),
                                           file_index=table.column(2)[0].as_py())  # fmt: skip
    schema = pq.read_schema(path)
    fields = [schema.field(name) for name in features.columns]
    metadata = schema.metadata if capture_times.columns_of(info) == [] else None
    return pa.schema(fields, metadata=metadata)
