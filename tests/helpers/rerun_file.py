"""Reading a Rerun recording file back: what the preview logged, per entity and frame.

rerun-sdk 0.41 reads files with `rerun.chunk.RrdReader`; 0.26 (LeRobot 0.4.4's) with
`rerun.dataframe.load_recording`. Both give Arrow columns of the same components.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

Logged = dict[str, list[tuple[int, np.ndarray]]]


def read_rrd(path) -> Logged:
    """entity path ("/front") -> [(frame, value)] in frame order, where value is an image as
    (h, w, channels) uint8 or a series row as float64; `frame` is the preview's timeline."""
    rr = pytest.importorskip("rerun")
    out: Logged = defaultdict(list)
    try:
        import rerun.chunk as chunk
    except ImportError:
        table = rr.dataframe.load_recording(str(path)).view(index="frame", contents="/**")
        table = table.select().read_all()
        frames = table.column("frame").to_pylist()
        for name in table.schema.names:
            entity, _, component = name.partition(":")
            if component in ("Image:buffer", "Scalars:scalars"):
                fmt = table.column(f"{entity}:Image:format") if "Image" in component else None
                _add(out, entity, component, frames, table.column(name), fmt)
    else:
        for piece in chunk.RrdReader(str(path)).stream():
            batch = piece.to_record_batch()
            for component in ("Image:buffer", "Scalars:scalars"):
                if component in batch.schema.names and "frame" in batch.schema.names:
                    fmt = batch.column("Image:format") if "Image" in component else None
                    _add(out, piece.entity_path, component, batch.column("frame").to_pylist(),
                         batch.column(component), fmt)  # fmt: skip
    return {entity: sorted(rows, key=lambda r: r[0]) for entity, rows in out.items()}


def _add(out: Logged, entity: str, component: str, frames, column, formats) -> None:
    values = column.to_pylist()
    shapes = formats.to_pylist() if formats is not None else [None] * len(values)
    for frame, value, fmt in zip(frames, values, shapes, strict=True):
        if value is None:
            continue  # another entity's row in a dataframe
        if component == "Image:buffer":
            pixels = np.asarray(value[0], np.uint8)
            out[entity].append((frame, pixels.reshape(fmt[0]["height"], fmt[0]["width"], -1)))
        else:
            out[entity].append((frame, np.asarray(value, np.float64)))
