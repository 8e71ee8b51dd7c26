"""A real worker process loads only what its layer allows: no pyarrow, rich or recorder in an
encoder, no PyAV either in the stats worker. Each worker is asked (SIGUSR1, through a
sitecustomize on its PYTHONPATH) to write down its sys.modules in the middle of an episode."""

import os
import signal
import time

import numpy as np

from shmpipe import Pipeline

SITECUSTOMIZE = '''
import os, signal, sys

def _dump(signum, frame):
    path = os.path.join(os.environ["SHMPIPE_TEST_MODULES_DIR"], f"{os.getpid()}.txt")
    with open(path + ".tmp", "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
    os.replace(path + ".tmp", path)

if "SHMPIPE_TEST_MODULES_DIR" in os.environ:
    signal.signal(signal.SIGUSR1, _dump)
'''
FORBIDDEN_IN_EVERY_WORKER = ("pyarrow", "rich", "shmpipe.recorder", "shmpipe.dataset",
                             "shmpipe.tools", "shmpipe.integrations")  # fmt: skip


def _modules_of(pid: int, folder) -> set[str]:
    os.kill(pid, signal.SIGUSR1)
    path = folder / f"{pid}.txt"
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, f"worker {pid} did not write its modules"
        time.sleep(0.02)
    return set(path.read_text().split())


def _top(modules: set[str], prefix: str) -> list[str]:
    return sorted(m for m in modules if m == prefix or m.startswith(prefix + "."))


def test_workers_import_only_their_layers(tmp_path, monkeypatch):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    dumps = tmp_path / "modules"
    dumps.mkdir()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("SHMPIPE_TEST_MODULES_DIR", str(dumps))
    monkeypatch.setenv("SHMPIPE_BACKEND", "process")
    frame = np.zeros((64, 96, 3), np.uint8)
    with Pipeline(tmp_path / "ds", fps=30, cameras={"observation.images.a": (64, 96, 3)},
                  features={"action": (2,)}, control_priority=None) as pipe:  # fmt: skip
        for _ in range(5):
            pipe.add_frame({"observation.images.a": frame, "action": np.zeros(2, np.float32)},
                           task="t")  # fmt: skip
        status = pipe.status()
        encoder = _modules_of(status.cameras["observation.images.a"].worker_pid, dumps)
        stats = _modules_of(status.stats.worker_pid, dumps)
        pipe.finish_episode()
    # (a worker runs as `python -m workers.<kind>`: its own module is __main__)
    assert {"workers.base", "shmpipe.video.episode_writer", "av"} <= encoder, "not an encoder"
    assert {"workers.base", "shmpipe.ipc.histogram_store"} <= stats, "not the stats worker"
    for name in FORBIDDEN_IN_EVERY_WORKER:
        assert not _top(encoder, name), f"the encoder worker imported {_top(encoder, name)}"
        assert not _top(stats, name), f"the stats worker imported {_top(stats, name)}"
    assert not _top(stats, "av"), "the stats worker imported PyAV"
