"""lerobot-rollout's strategy loops (LeRobot 0.6.1, lerobot/rollout/strategies/), reproduced tick by
tick without a robot or a policy, on a dataset with LeRobot's recording API: shmpipe's
LeRobotRecorder or LeRobot's own LeRobotDataset (streaming encoding, as sentry and highlight
force). Each tick's dataset calls are timed in the loop thread; every frame carries a counter
drawn into each camera, so frames lost are counted from the decoded videos (rows vs frames).

- episodic: episodes of `episode_s` with `reset_s` between (not recorded), save in the loop;
- sentry:   continuous, an episode saved every `episode_s` in the loop thread;
- highlight: the last `ring_s` of frames kept raw in RAM by LeRobot (its RolloutRingBuffer keeps
  frame dicts in a deque); the save key 1 s after the ring is full: every buffered frame goes to
  add_frame in ONE tick ("flush"), then `live_s` live, then save; through shmpipe the ring is
  rolling capture (Pipeline preroll_s, as `shmpipe lerobot-rollout` makes it): the key is keep();
- dagger:   as sentry, with LeRobot's bool `intervention` (1,) flipping every 2 s.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.frames import CameraFrames, state_action

STRATEGIES = ("episodic", "sentry", "highlight", "dagger")
BITS, BLOCK_H, POOL = 16, 24, 64  # counter blocks; distinct camera-like frames per camera


@dataclass
class Plan:
    strategy: str
    cameras: int = 3
    height: int = 480
    width: int = 640
    fps: int = 30
    episode_s: float = 10.0  # episodic and sentry: one episode
    reset_s: float = 2.0  # episodic
    episodes: int = 3  # episodic and sentry
    ring_s: float = 10.0  # highlight: the pre-roll
    live_s: float = 5.0  # highlight: live recording after the flush

    @property
    def names(self) -> list[str]:
        return [f"observation.images.cam{c}" for c in range(self.cameras)]

    def features(self) -> dict:
        joints = [f"j{i}" for i in range(6)]
        camera = {"dtype": "video", "shape": (self.height, self.width, 3),
                  "names": ["height", "width", "channels"]}  # fmt: skip
        features = {name: dict(camera) for name in self.names}
        for key in ("observation.state", "action"):
            features[key] = {"dtype": "float32", "shape": (6,), "names": joints}
        if self.strategy == "dagger":
            features["intervention"] = {"dtype": "bool", "shape": (1,), "names": None}
        return features


@dataclass
class Trace:
    """Times in ms; `blocked` lists (what, ms) for each save and flush, in the loop thread."""

    blocked: list[tuple[str, float]] = field(default_factory=list)
    add_frame_ms: list[float] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    added: int = 0
    ring_mb: float = 0.0  # highlight: raw frames held at the flush


def save_pool(plan: Plan, path: Path) -> None:
    """POOL camera-like frames per camera (bench.frames; needs scikit-image), as one .npy that
    every run loads, whichever interpreter runs it (a LeRobot venv may lack scikit-image)."""
    pool = np.empty((plan.cameras, POOL, plan.height, plan.width, 3), np.uint8)
    for c in range(plan.cameras):
        source = CameraFrames(c, plan.height, plan.width)
        for t in range(POOL):
            source.frame(t, out=pool[c, t])
    np.save(path, pool)


class Frames:
    """Frame t: each camera's camera-like frame (the pool cycled) with t drawn as 16 blocks, in
    fresh arrays (a ring or a writer's queue may keep them), and the joints' signals."""

    def __init__(self, plan: Plan, pool: Path) -> None:
        self.plan, self.pool = plan, np.load(pool)

    def make(self, t: int) -> dict:
        frame = {}
        for c, name in enumerate(self.plan.names):
            image = self.pool[c, t % POOL].copy()
            draw_counter(image, t)
            frame[name] = image
        state, action = state_action(t)
        state[0] = t  # the row's counter
        frame["observation.state"], frame["action"] = state, action
        if self.plan.strategy == "dagger":
            frame["intervention"] = np.array([(t // (2 * self.plan.fps)) % 2 == 1])
        frame["task"] = "bench"
        return frame


def draw_counter(image: np.ndarray, t: int) -> None:
    width = image.shape[1] // BITS
    image[: BLOCK_H + 8] = 0
    for bit in range(BITS):
        if (t >> bit) & 1:
            image[4 : 4 + BLOCK_H, bit * width + 2 : (bit + 1) * width - 2] = 255


def read_counter(image: np.ndarray) -> int:
    """t from a decoded frame: each block's inner half, lit or not."""
    width = image.shape[1] // BITS
    band = image[8:BLOCK_H, : BITS * width].reshape(BLOCK_H - 8, BITS, width, 3)
    lit = band[:, :, width // 4 : width - width // 4].mean(axis=(0, 2, 3)) > 127
    return int(np.dot(lit, 1 << np.arange(BITS)))


def run(plan: Plan, dataset, frames: Frames) -> Trace:
    """The strategy's loop, paced at plan.fps; a late tick is not skipped."""
    trace, period = Trace(), 1.0 / plan.fps
    step = STEPS[plan.strategy](plan, dataset, trace)
    ticks = step.ticks
    start = time.perf_counter() + period
    for t in range(ticks):
        scheduled = start + t * period
        if (delay := scheduled - time.perf_counter()) > 0:
            time.sleep(delay)
        trace.lateness_ms.append((time.perf_counter() - scheduled) * 1e3)
        step(t, frames.make(t))
    step.end()
    return trace


class Step:
    """One strategy's per-tick logic; times every dataset call it makes."""

    def __init__(self, plan: Plan, dataset, trace: Trace) -> None:
        self.plan, self.dataset, self.trace = plan, dataset, trace
        self.per_episode = round(plan.episode_s * plan.fps)
        self.pending = False

    def add(self, frame: dict) -> None:
        started = time.perf_counter()
        self.dataset.add_frame(frame)
        self.trace.add_frame_ms.append((time.perf_counter() - started) * 1e3)
        self.trace.added += 1
        self.pending = True

    def timed(self, what: str, call) -> None:
        started = time.perf_counter()
        call()
        self.trace.blocked.append((what, (time.perf_counter() - started) * 1e3))

    def save(self) -> None:
        self.timed("save", self.dataset.save_episode)
        self.pending = False

    def end(self) -> None:
        if self.pending:
            self.save()


class Episodic(Step):
    @property
    def ticks(self) -> int:
        return self.plan.episodes * (self.per_episode + round(self.plan.reset_s * self.plan.fps))

    def __call__(self, t: int, frame: dict) -> None:
        at = t % (self.per_episode + round(self.plan.reset_s * self.plan.fps))
        if at < self.per_episode:
            self.add(frame)
            if at == self.per_episode - 1:
                self.save()


class Sentry(Step):  # dagger too: the same loop, with the intervention column
    @property
    def ticks(self) -> int:
        return self.plan.episodes * self.per_episode

    def __call__(self, t: int, frame: dict) -> None:
        self.add(frame)
        if (t + 1) % self.per_episode == 0:
            self.save()


class Highlight(Step):
    def __init__(self, plan: Plan, dataset, trace: Trace) -> None:
        super().__init__(plan, dataset, trace)
        self.ring: deque = deque(maxlen=round(plan.ring_s * plan.fps))
        self.key = round((plan.ring_s + 1) * plan.fps)
        self.saved_at = self.key + round(plan.live_s * plan.fps)

    @property
    def ticks(self) -> int:
        return self.saved_at + self.plan.fps  # 1 s of ring after the save

    def __call__(self, t: int, frame: dict) -> None:
        pipeline = getattr(self.dataset, "pipeline", None)
        if pipeline is not None and pipeline.preroll_s:  # shmpipe: frames roll, encoded
            self.rolling(t, frame, pipeline)
            return
        if t == self.key:
            held = sum(f[n].nbytes for f in self.ring for n in self.plan.names)
            self.trace.ring_mb = held / 2**20
            self.timed("flush", lambda: [self.add(f) for f in [*self.ring, frame]])
            self.ring.clear()
        elif self.key < t < self.saved_at:
            self.add(frame)
        elif t == self.saved_at:
            self.add(frame)
            self.save()
        else:
            self.ring.append(frame)

    def rolling(self, t: int, frame: dict, pipeline) -> None:
        """What shmpipe's ring stand-in does (integrations/lerobot/highlight.py): append is
        add_frame into the window, the key's drain is keep(); the frames kept count as added."""
        if t < self.key or t > self.saved_at:  # rolling: kept only by a keep()
            started = time.perf_counter()
            self.dataset.add_frame(frame)
            self.trace.add_frame_ms.append((time.perf_counter() - started) * 1e3)
            return
        if t == self.key:
            kept = []
            self.timed("flush", lambda: kept.append(pipeline.keep()))
            self.trace.added += kept[0]
        self.add(frame)
        if t == self.saved_at:
            self.save()


STEPS = {"episodic": Episodic, "sentry": Sentry, "highlight": Highlight, "dagger": Sentry}


def frames_in_place(root: Path, names: list[str]) -> int:
    """Rows whose frame, decoded from every camera's video at the row's place, shows the row's
    counter (state[0] is the counter, rounded)."""
    import av
    import pyarrow.parquet as pq

    rows = pq.read_table(sorted(root.glob("data/*/*.parquet"))).to_pydict()
    episodes = pq.read_table(sorted(root.glob("meta/episodes/*/*.parquet"))).to_pylist()
    counters = np.rint(np.array(rows["observation.state"])[:, 0]).astype(int)
    episode_of = np.array(rows["episode_index"])
    in_place = 0
    for ep in episodes:
        want = counters[episode_of == ep["episode_index"]].tolist()
        shown = None
        for name in names:
            chunk, file = ep[f"videos/{name}/chunk_index"], ep[f"videos/{name}/file_index"]
            path = root / "videos" / name / f"chunk-{chunk:03d}" / f"file-{file:03d}.mp4"
            start, end = ep[f"videos/{name}/from_timestamp"], ep[f"videos/{name}/to_timestamp"]
            got = []
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                for frame in container.decode(stream):
                    if start - 1e-3 <= float(frame.pts * stream.time_base) < end - 1e-3:
                        got.append(read_counter(frame.to_ndarray(format="rgb24")))
            ok = {i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a == b}
            shown = ok if shown is None else shown & ok
        in_place += len(shown or ())
    return in_place
