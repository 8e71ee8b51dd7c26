"""merge, verify and stats of 20 datasets as Ray tasks (a local Ray, 2 workers) give what one
process gives, byte for byte; a Ray worker SIGKILLed mid-merge is retried, the result unchanged.

Skipped where Ray is not installed (pip install 'shmpipe[ray]'), failed if SHMPIPE_RAY=1.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from shmpipe.tools.fanout import Fanout
from shmpipe.tools.merge import merge
from shmpipe.tools.stats.recompute import RestatEach
from shmpipe.tools.verify.many import VerifyEach
from tests.helpers.paths import REFERENCE, needs_reference
from tests.tools.merge_sources import make_sources

if os.environ.get("SHMPIPE_RAY") == "1":
    import ray
else:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'shmpipe[ray]')")

pytestmark = needs_reference
DATASETS = 20


@pytest.fixture(scope="module")
def on_ray():
    from shmpipe.tools.fanout import RayFanout

    fanout = RayFanout(workers=2)
    yield fanout
    ray.shutdown()


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("fleet")
    found = make_sources(folder)[:2]
    for i in range(DATASETS - 2):
        found.append(shutil.copytree(REFERENCE, folder / f"ref{i:02d}"))
    return found


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def test_merge_on_ray_is_byte_identical_to_one_process(sources, on_ray, tmp_path):
    merge(tmp_path / "one", sources, Fanout())
    merge(tmp_path / "ray", sources, on_ray)
    one, many = files(tmp_path / "one"), files(tmp_path / "ray")
    assert one.keys() == many.keys()
    assert one["meta/stats.json"] == many["meta/stats.json"]
    assert [k for k in one if one[k] != many[k]] == []


def test_verify_and_stats_on_ray_give_the_same_verdicts(sources, on_ray, tmp_path):
    roots = [shutil.copytree(s, tmp_path / f"{i:02d}") for i, s in enumerate(sources)]
    (roots[3] / "videos/observation.images.cam1/chunk-000/file-000.mp4").unlink()
    (roots[5] / "meta/info.json").write_text("{}")

    def verdicts(results):
        return [(None, e) if r is None else (r.ok, [p.line() for p in r.problems])
                for r, e in results]  # fmt: skip

    alone = verdicts(Fanout().map(VerifyEach(), roots))
    assert verdicts(on_ray.map(VerifyEach(), roots)) == alone
    assert [v[0] for v in alone].count(True) == DATASETS - 2
    copies = [shutil.copytree(r, tmp_path / f"copy{r.name}") for r in roots]

    def restated(results, folders):
        return [(r and r.differences, e.replace(str(f), "DIR"), p)
                for (r, e, p), f in zip(results, folders, strict=True)]  # fmt: skip

    alone = restated(Fanout().map(RestatEach(), copies), copies)
    assert restated(on_ray.map(RestatEach(), roots), roots) == alone
    assert [p for _, _, p in alone].count(True) == 1  # the one missing a video
    for copy, root in zip(copies, roots, strict=True):
        if root.name not in ("03", "05"):
            stats = "meta/stats.json"
            assert (copy / stats).read_bytes() == (root / stats).read_bytes(), root.name


def busy_workers() -> list[int]:
    """Processes running a Ray task of ours (their title is ray::_call)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::_call"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_killed_ray_worker_is_retried_and_the_merge_is_unchanged(sources, on_ray, tmp_path):
    merge(tmp_path / "one", sources, Fanout())
    failed: list[BaseException] = []

    def run():
        try:
            merge(tmp_path / "ray", sources, on_ray)
        except BaseException as error:  # noqa: BLE001 - reported below
            failed.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        busy = busy_workers()
        if busy and (tmp_path / ".ray.merging/meta/shmpipe/merge").is_dir():
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    thread.join(timeout=300)
    assert not failed, failed
    assert killed is not None, "no Ray worker was seen copying a source"
    one, many = files(tmp_path / "one"), files(tmp_path / "ray")
    assert one == many
