"""Faults of a real encoder, injected once per process: the codec emitting a frame out of
order (what SVT-AV1 did beside busy processes: frame 380 before 355-379), or refusing a frame
with EINVAL. Installed in the test process (thread backend) or, through a sitecustomize on the
workers' PYTHONPATH, in every worker process (process backend)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import av

ENV = "SHMPIPE_TEST_ENCODER_FAULT"  # "misorder:N" or "refuse:N" (N: the frame index)
SITECUSTOMIZE = f"""
import os
if os.environ.get({ENV!r}):
    from tests.helpers.encoder_faults import install
    install(os.environ[{ENV!r}])
"""


def install(fault: str) -> None:
    from shmpipe.video import episode_writer

    kind, at = fault.split(":")
    writer_class, at, fired = episode_writer.EpisodeVideoWriter, int(at), []
    mux, encode = writer_class._mux, writer_class.encode
    stash: list = []

    def misordered_mux(self, packets) -> None:
        """Frame `at` comes out after the frame that follows it."""
        packets = list(packets)
        if stash and packets:
            packets[1:1] = [stash.pop()]
        indexes = [p.pts for p in packets]
        if not fired and at in indexes:
            fired.append(at)
            i = indexes.index(at)
            if i + 1 < len(packets):
                packets[i], packets[i + 1] = packets[i + 1], packets[i]
            else:
                stash.append(packets.pop(i))
        mux(self, packets)

    def refusing_encode(self, frame, index) -> None:
        if not fired and index == at:
            fired.append(at)
            av.error.err_check(-errno.EINVAL, str(self.segment_path))
        encode(self, frame, index)

    if kind == "misorder":
        writer_class._mux = misordered_mux
    else:
        writer_class.encode = refusing_encode


def in_workers(monkeypatch, tmp_path: Path, fault: str) -> None:
    """Every worker process started from now on gets `fault` once."""
    hook = tmp_path / "fault-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv(ENV, fault)
