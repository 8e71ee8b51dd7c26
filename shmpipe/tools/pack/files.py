"""How one packed file is made from the files it replaces, without touching a pixel or a row.

Videos are remuxed: each source's packets are copied with pts/dts shifted so that it starts
where the previous one ended. Data parquet files are concatenated row group by row group;
meta/episodes files too, with each row's new file indices and times.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import pyarrow as pa
import pyarrow.parquet as pq

from shmpipe.dataset import layout
from shmpipe.video.packets import frame_packets, mux_copy

EPISODES_PER_ROW_GROUP = 100


def remux_videos(sources: Sequence[Path], dest: Path) -> list[Fraction]:
    """Write the first video stream of each source, one after the other, into the MP4 `dest`;
    return the time in seconds at which each source starts in it.

    The output is a plain MP4 with its index at the front ("faststart"), as LeRobot's
    concatenate_video_files writes: packing runs offline, so a fragmented file's one gain (a
    half-written file still plays) does not apply, and readers streaming from the Hub find the
    whole index in the first bytes.
    """
    starts: list[Fraction] = []
    with av.open(str(dest), "w", format="mp4", options={"movflags": "faststart"}) as out:
        target = None
        offset = 0  # ticks of the output's time base at which the next source starts
        for source in sources:
            with av.open(str(source)) as container:
                stream = container.streams.video[0]
                if target is None:
                    target = out.add_stream_from_template(stream, opaque=True)
                    target.time_base = stream.time_base
                if stream.time_base != target.time_base:
                    raise ValueError(f"{source}: time base {stream.time_base}, expected "
                                     f"{target.time_base}")  # fmt: skip
                starts.append(offset * Fraction(target.time_base))
                end = offset
                for packet in frame_packets(container, stream):
                    end = max(end, offset + packet.pts + packet.duration)
                    mux_copy(out, target, packet, offset + packet.pts, offset + packet.dts)
                offset = end
    return starts


def concatenate_parquet(sources: Sequence[Path], dest: Path) -> None:
    """Write the rows of every source, in order, into `dest` (the first source's schema and
    metadata); each source row group stays a row group, so an episode keeps its own."""
    writer = None
    try:
        for source in sources:
            file = pq.ParquetFile(source)
            if writer is None:
                writer = pq.ParquetWriter(dest, file.schema_arrow, compression="snappy")
            for group in range(file.num_row_groups):
                writer.write_table(file.read_row_group(group))
    finally:
        if writer is not None:
            writer.close()


def concatenate_episodes(sources: list[Path], located: pa.Table, dest: Path) -> None:
    """The rows of the meta/episodes files `sources` (of committed episodes), in order, into
    `dest`, their location columns taken from `located` (row i: episode i). One source in
    memory at a time, rows written in row groups of up to EPISODES_PER_ROW_GROUP (a footer
    entry per one-row group would grow with the episodes)."""
    writer, pending = None, []
    try:
        for source in sources:
            rows = pq.read_table(source)
            indices = rows.column("episode_index").to_numpy()
            rows = rows.filter(pa.array(indices < located.num_rows))
            moved = located.take(pa.array(rows.column("episode_index").to_numpy()))
            for name in located.column_names:
                if name != "episode_index":
                    at = rows.schema.get_field_index(name)
                    rows = rows.set_column(at, name, moved.column(name))
            if writer is None:
                writer = pq.ParquetWriter(dest, rows.schema)
            pending.append(rows.cast(writer.schema))
            if sum(t.num_rows for t in pending) >= EPISODES_PER_ROW_GROUP:
                writer.write_table(pa.concat_tables(pending))
                pending = []
        if pending:
            writer.write_table(pa.concat_tables(pending))
    finally:
        if writer is not None:
            writer.close()



def managed_files(root: Path) -> tuple[int, int]:
    """How many files pack manages (data, videos, meta/episodes), and their bytes."""
    count = size = 0
    for folder in layout.PACKED_FOLDERS:
        for path in (root / folder).rglob("*"):
            if path.is_file():
                count, size = count + 1, size + path.stat().st_size
    return count, size
