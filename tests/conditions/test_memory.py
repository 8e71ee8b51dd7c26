"""Memory: a backlog bounded by backlog_bytes that spills to disk, a /dev/shm too small for the
rings (Docker's 64 MiB), and nothing that grows per episode or per frame.
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shmpipe import Pipeline
from tests.helpers.episodes import assert_marked_episode, episode_files
from tests.helpers.frames import marked_frames
from tests.helpers.media import decode_video
from tests.helpers.paths import CHILDREN, REPO
from tests.helpers.processes import leaked, run_child, unshare_works

FPS = 30
SMALL = {"front": (48, 64, 3), "wrist": (48, 64, 3)}


def anon_rss() -> int:
    """Bytes of this process's anonymous memory (heap, numpy buffers): excludes the rings
    (shared memory) and any file it maps, so it measures what a backlog holds."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def test_backlog_beyond_backlog_bytes_spills_to_disk_and_drops_nothing(tmp_path):
    h, w = 240, 320
    frames = marked_frames(61, h, w)
    frame_bytes = h * w * 3
    n = 500
    cams = {"front": (h, w, 3)}
    with Pipeline(
        tmp_path,
        fps=FPS,
        cameras=cams,
        backend="process",
        ring_budget_bytes=1,  # the smallest ring allowed
        backlog_bytes=2 * frame_bytes,
    ) as pipe:
        gc.collect()
        base = peak = anon_rss()
        spilled = backlog_bytes = 0
        for i in range(n):  # unpaced: far faster than the encoder
            pipe.add_frame({"front": frames[i % len(frames)]}, task="t")
            if i % 10 == 0:
                cam = pipe.status().cameras["front"]
                spilled = max(spilled, cam.spilled_frames)
                backlog_bytes = max(backlog_bytes, cam.backlog_bytes)
                peak = max(peak, anon_rss())
        slots = pipe.status().cameras["front"].slots_total
        result = pipe.finish_episode()
    growth = (peak - base) / 2**20
    unbounded = (n - slots) * frame_bytes / 2**20
    print(
        f"{n} frames unpaced, ring {slots} slots: {spilled} spilled, backlog peak "
        f"{backlog_bytes / 2**20:.1f} MiB, anonymous RSS +{growth:.1f} MiB "
        f"(an unbounded backlog would hold ~{unbounded:.0f} MiB)"
    )
    assert spilled > 0, "status() never showed a spilled frame"
    assert backlog_bytes <= 2 * frame_bytes, f"backlog held {backlog_bytes} B > backlog_bytes"
    assert growth < 48, f"control process grew {growth:.0f} MiB with backlog_bytes of 2 frames"
    assert_marked_episode(result, "front", frames, n)
    assert episode_files(tmp_path) == [
        "data/chunk-000/file-000.parquet",
        "videos/front/chunk-000/file-000.mp4",
    ], "spill files left in the dataset"


def run_with_small_dev_shm(root: Path, *args: str, options: str = "size=64m") -> dict:
    """small_shm_recorder.py ROOT ARGS in a mount namespace of its own, with a tmpfs mounted
    with `options` on /dev/shm."""
    why = unshare_works("-m")
    if why:
        pytest.skip(why)
    script = f'mount -t tmpfs -o {options} tmpfs /dev/shm && exec "$@"'
    return run_child(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]
        + [sys.executable, str(CHILDREN / "small_shm_recorder.py"), str(root), *args],
        120,
    )


def test_start_on_a_too_small_dev_shm_raises_saying_what_is_needed(tmp_path):
    # 3 cameras 720x1280 with default rings need far more than Docker's 64 MiB
    info = run_with_small_dev_shm(tmp_path, "3", "720", "1280", "default", "0")
    print(f"refusal: {info}")
    assert info["outcome"] == "refused"
    assert info["runtime_error"], f"{info['type']} is not a RuntimeError"
    message = info["message"]
    assert "--shm-size" in message, message
    assert re.search(r"\d+(\.\d+)?\s*(B|bytes|KiB|MiB|GiB|KB|MB|GB)\b", message), message
    assert info["shm_left"] == [], f"left in /dev/shm: {info['shm_left']}"
    assert not (tmp_path / "meta" / "info.json").exists() or episode_files(tmp_path) == []


@pytest.mark.parametrize(
    ("options", "says"),
    [("ro,size=64m", "read-only"), ("size=64m,nr_inodes=4", "free inodes")],
    ids=["read-only", "out of inodes"],
)
def test_an_unusable_dev_shm_is_refused_clearly_before_the_dataset_is_made(tmp_path, options,
                                                                          says):  # fmt: skip
    root = tmp_path / "ds"
    info = run_with_small_dev_shm(root, "2", "48", "64", "default", "0", options=options)
    assert info["outcome"] == "refused", info
    assert info["type"] == "SharedMemoryError", info  # was a plain OSError
    assert "/dev/shm" in info["message"] and says in info["message"], info["message"]
    assert "mount" in info["message"], "it must say how to fix it"
    assert not root.exists(), f"start() wrote {sorted(p.name for p in root.rglob('*'))}"


def test_recording_that_fits_a_64_mib_dev_shm_works(tmp_path):
    info = run_with_small_dev_shm(tmp_path, "1", "240", "320", str(16 * 2**20), "30")
    assert info["outcome"] == "recorded", info
    assert info["num_frames"] == 30
    assert info["shm_left"] == [], f"left in /dev/shm: {info['shm_left']}"
    decoded, _ = decode_video(info["videos"]["cam0"])
    assert len(decoded) == 30


def resources() -> dict[str, int]:
    """What a leak would grow in the control process."""
    me = os.getpid()
    children = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                children += 1
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),
        "children": children,
        "shm_objects": len(leaked()),
    }


def settled_resources() -> dict[str, int]:
    """resources() once two readings 20 ms apart agree (threads of a finished codec exit)."""
    previous, current = None, resources()
    while current != previous:
        time.sleep(0.02)
        previous, current = current, resources()
    return current


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_churn_of_200_episodes_grows_nothing(tmp_path, backend):
    image = np.full((48, 64, 3), 100, np.uint8)
    seen = {}
    with Pipeline(tmp_path, fps=30, cameras=SMALL, backend=backend) as pipe:
        for episode in range(200):
            for _ in range(4):
                pipe.add_frame({"front": image, "wrist": image}, task="churn")
            if episode % 2:
                pipe.cancel_episode()
            else:
                pipe.finish_episode()
            if episode == 19:
                seen[19] = settled_resources()
            if episode == 199:  # wait (up to 5 s) for what the last episode's threads free
                deadline = time.monotonic() + 5
                while settled_resources() != seen[19] and time.monotonic() < deadline:
                    time.sleep(0.01)
                seen[199] = settled_resources()
        assert pipe.next_episode_index == 100
    assert seen[199] == seen[19], f"resources grew between episode 20 and 200: {seen}"
    videos = list((tmp_path / "videos" / "front").rglob("*.mp4"))
    assert len(videos) == 100


@pytest.mark.soak  # ~18 s; the default run keeps the 200-episode churn for leaks
def test_long_episode_keeps_control_process_memory_flat(tmp_path):
    n = 18_000
    images = [np.full((48, 64, 3), v, np.uint8) for v in range(0, 250, 10)]
    state = np.zeros(6, np.float32)
    with Pipeline(
        tmp_path, fps=30, cameras=SMALL, features={"observation.state": (6,)}, backend="process"
    ) as pipe:
        for i in range(n):
            image = images[i % len(images)]
            pipe.add_frame({"front": image, "wrist": image, "observation.state": state}, task="t")
            if i == 2_000:
                rss_early = rss_bytes()
            time.sleep(0.0005)  # let the encoders (nearly) keep up
        rss_late = rss_bytes()
        backlogged = sum(c.backlog for c in pipe.status().cameras.values())
        result = pipe.finish_episode()
    assert result.num_frames == n
    growth = rss_late - rss_early
    rows = (n - 2_000) * (6 * 4 + 8)  # the numeric rows are all the episode may keep,
    waiting = backlogged * 48 * 64 * 3  # besides frames still waiting for a ring slot
    allowed = rows + waiting + 8 * 2**20
    print(f"RSS growth over {n - 2000} frames: {growth / 2**20:.2f} MiB, {backlogged} waiting")
    assert growth < allowed, f"RSS grew {growth / 2**20:.1f} MiB over {n - 2000} frames"
    assert len(decode_video(result.videos["front"][0])[0]) == n


def test_the_demo_on_a_too_small_dev_shm_says_what_is_needed_in_one_line(tmp_path):
    why = unshare_works("-m")
    if why:
        pytest.skip(why)
    script = 'mount -t tmpfs -o size=32m tmpfs /dev/shm && exec "$@"'
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
         sys.executable, "-m", "shmpipe", "demo", "--root", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith("shmpipe demo: ") and "--shm-size" in proc.stderr
    assert not (tmp_path / "demo" / "meta" / "info.json").exists()
