"""What `shmpipe verify` found: each problem with where it is, and the dataset's size."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from shmpipe.tools.arguments import count


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with where it is (None where it is not about one episode/camera/file)."""

    message: str
    episode: int | None = None
    camera: str | None = None
    file: str | None = None

    def line(self) -> str:
        where = [
            f"episode {self.episode}" if self.episode is not None else None,
            f"camera {self.camera}" if self.camera else None,
            self.file,
        ]
        return ", ".join(w for w in where if w) + ": " + self.message


@dataclass
class VerifyReport:
    """What verify_dataset found: the dataset's size, and every problem (none: it is whole)."""

    root: Path
    episodes: int = 0
    frames: int = 0
    cameras: int = 0
    video_frames: int = 0  # frames found in the video files
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [p.line() for p in self.problems]
        rate = self.video_frames / self.seconds if self.seconds > 0 else 0.0
        lines.append(
            f"checked {count(self.episodes, 'episode')}, {count(self.video_frames, 'video frame')}"
            f" in {self.seconds:.2f} s ({self.episodes_per_s:.1f} episodes/s, {rate:.0f} frames/s)"
        )
        if self.ok:
            sizes = (count(self.episodes, "episode"), count(self.frames, "frame"),
                     count(self.cameras, "camera"))  # fmt: skip
            lines.append("OK: " + ", ".join(sizes))
        else:
            lines.append(f"FAILED: {count(len(self.problems), 'problem')}")
        return "\n".join(lines)

    @property
    def episodes_per_s(self) -> float:
        return self.episodes / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict:
        out = {"ok": self.ok, "root": str(self.root)}
        out.update({k: v for k, v in asdict(self).items() if k != "root"})
        rate = self.video_frames / self.seconds if self.seconds > 0 else 0.0
        out.update(episodes_per_s=self.episodes_per_s, video_frames_per_s=rate)
        return out
