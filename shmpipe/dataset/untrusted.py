"""Reading a dataset that may be broken or hostile, as the tools and a resume must.

Every file a dataset names is checked to be a non-empty regular file before it is opened (a
FIFO blocks forever, /dev/zero never ends, a power cut leaves 0-byte files); JSON is bounded in
size and depth; info.json's fields and path templates are checked before they are used. Each
refusal is a DamagedDatasetError naming the file and what was expected.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import string
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe.errors import ConfigError

MAX_JSON_BYTES = 64 * 2**20  # info.json and stats.json hold kilobytes
MAX_NAME_BYTES = 255  # one path component (NAME_MAX)
MAX_TEMPLATE_BYTES = 1024
MAX_FILE_INDEX = 10**6  # chunk and file numbers: a million files of 100 MB is 100 TB
TEMPLATE_FIELDS = {
    "data_path": ("chunk_index", "file_index"),
    "video_path": ("video_key", "chunk_index", "file_index"),
}
_WIDTH = re.compile(r"0?\d{0,2}d?")  # "03d" and the like: no width that builds a huge string


class DamagedDatasetError(ConfigError):
    """A file of the dataset cannot be used as it is: absent, not a regular file, cut short,
    unreadable, or holding what the format does not allow. The message names the file."""


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a dataset file (missing, a FIFO or device, 0 bytes); None
    if it is a non-empty regular file. Nothing is opened."""
    try:
        mode = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as error:  # ENAMETOOLONG, ELOOP, EACCES
        return f"cannot be read: {error.strerror}"
    if stat.S_ISFIFO(mode.st_mode):
        return "is a FIFO, not a regular file"
    if not stat.S_ISREG(mode.st_mode):
        kind = "folder" if stat.S_ISDIR(mode.st_mode) else "device or socket"
        return f"is a {kind}, not a regular file"
    if mode.st_size == 0:
        return "is empty (0 bytes): cut short, e.g. by a power cut"
    return None


def require_file(path: Path, name: str) -> None:
    """Raise DamagedDatasetError("<name>: <problem>") unless `path` is a non-empty regular file."""
    problem = file_problem(path)
    if problem is not None:
        raise DamagedDatasetError(f"{name}: {problem}")


def read_json(path: Path, name: str) -> object:
    """The JSON value of a regular file of at most MAX_JSON_BYTES; DamagedDatasetError if it is
    not one, or nested too deep to parse."""
    require_file(path, name)
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_JSON_BYTES + 1)
    except OSError as error:
        raise DamagedDatasetError(f"{name}: cannot be read: {error.strerror}") from None
    if len(text) > MAX_JSON_BYTES:
        raise DamagedDatasetError(f"{name}: over {MAX_JSON_BYTES} bytes, expected a small file")
    try:
        return json.loads(text)
    except RecursionError:
        raise DamagedDatasetError(f"{name}: is not valid JSON: nested too deep") from None
    except ValueError as error:
        raise DamagedDatasetError(f"{name}: is not valid JSON: {error}") from None


def read_parquet(path: Path, name: str, columns: Sequence[str] | None = None) -> pa.Table:
    """A parquet file's table; DamagedDatasetError naming the file if it cannot be read."""
    require_file(path, name)
    try:
        return pq.read_table(path, columns=None if columns is None else list(columns))
    except (pa.ArrowException, OSError) as error:
        raise DamagedDatasetError(f"{name}: unreadable: {error}") from None


def parquet_rows(path: Path, name: str) -> int:
    """The number of rows a parquet file's footer holds."""
    require_file(path, name)
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as error:
        raise DamagedDatasetError(f"{name}: unreadable: {error}") from None


def info_problems(info: object) -> list[str]:
    """What in an info.json would make a reader fail or misbehave: fps, features, the totals,
    the path templates and the camera names (which become folder names)."""
    if not isinstance(info, dict):
        return [f"is a JSON {type(info).__name__}, expected an object"]
    out = []
    fps = info.get("fps")
    if not _is_number(fps) or not 0 < fps <= 1e6:
        out.append(f"fps is {_short(fps)}, expected a number of frames per second > 0")
    features = info.get("features")
    if not isinstance(features, dict) or not all(isinstance(f, dict) for f in features.values()):
        out.append(f"features is {_short(features)}, expected an object of name -> object")
    else:
        cameras = [n for n, f in features.items() if f.get("dtype") == "video"]
        out += [f"camera {_short(n)}: {p}" for n in cameras if (p := _name_problem(n))]
    for key in ("total_episodes", "total_frames", "total_tasks"):
        value = info.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            out.append(f"{key} is {_short(value)}, expected a whole number >= 0")
    for key, fields in TEMPLATE_FIELDS.items():
        problem = _template_problem(info.get(key), fields)
        if problem:
            out.append(f"{key} is {_short(info.get(key))}: {problem}")
    return out


def is_index(value: object) -> bool:
    """A chunk or file number that builds a path of bounded length."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_FILE_INDEX


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _name_problem(name: str) -> str | None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        return "expected a folder name (no '/', NUL, '.' or '..')"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"over {MAX_NAME_BYTES} bytes, longer than a folder name may be"
    return None


def _template_problem(template: object, fields: Sequence[str]) -> str | None:
    """Why a path template could not name a file inside the dataset; None if it can."""
    if not isinstance(template, str) or len(template.encode("utf-8", "replace")) > 1024:
        return f"expected a relative path template of at most {MAX_TEMPLATE_BYTES} bytes"
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        return f"not a path template: {error}"
    for _, field, spec, conversion in parts:
        if field is not None and (field not in fields or conversion or not _WIDTH.fullmatch(spec)):
            return f"expected only the fields {{{'}, {'.join(fields)}}} (with a width like :03d)"
    sample = template.format(chunk_index=MAX_FILE_INDEX, file_index=MAX_FILE_INDEX, video_key="k")
    names = sample.split("/")
    if sample.startswith("/") or ".." in names or "\0" in sample:
        return "expected a relative path inside the dataset"
    if any(len(n.encode()) > MAX_NAME_BYTES - 40 for n in names):  # 40: room for a camera
        return f"a folder or file name over {MAX_NAME_BYTES - 40} bytes"
    return None
