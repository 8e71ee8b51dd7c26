"""Reading a Rerun recording file back: what the preview logged, per entity and frame."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest


def read_rrd(path) -> dict[str, list[tuple[int, np.ndarray]]]:
    """entity path ("/front") -> [(frame, value)] in frame order, where value is an image as
    (h, w, channels) uint8 or a series row as float64; `frame` is the preview's timeline."""
    chunk = pytest.importorskip("rerun.chunk", reason="reading .rrd back needs rerun.chunk")
    out: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
    for piece in chunk.RrdReader(str(path)).stream():
        batch = piece.to_record_batch()
        names = batch.schema.names
        if "frame" not in names:
            continue  # the recording's properties
        frames = batch.column("frame").to_pylist()
        if "Image:buffer" in names:
            buffers = batch.column("Image:buffer").to_pylist()
            formats = batch.column("Image:format").to_pylist()
            for frame, buffer, fmt in zip(frames, buffers, formats, strict=True):
                pixels = np.asarray(buffer[0], np.uint8)
                out[piece.entity_path].append(
                    (frame, pixels.reshape(fmt[0]["height"], fmt[0]["width"], -1))
                )
        elif "Scalars:scalars" in names:
            for frame, values in zip(frames, batch.column("Scalars:scalars").to_pylist(),
                                     strict=True):  # fmt: skip
                out[piece.entity_path].append((frame, np.asarray(values, np.float64)))
    return {entity: sorted(rows, key=lambda r: r[0]) for entity, rows in out.items()}
