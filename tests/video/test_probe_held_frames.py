"""The probe counts the frames a codec holds back in frames, not in the stream's time base: an
encoder keeps a frame in the ring until it is on disk, so a ring sized from an undercount
overflows into a segment cut (or a stall) when the codec releases its frames in bursts."""

from __future__ import annotations

from shmpipe.video import probe
from shmpipe.video.settings import VideoSettings

START_DELAY, BURST = 3, 8  # first packet after 3 frames; later, 8 frames out at once


class Packet:
    def __init__(self, pts: int) -> None:
        self.pts = pts


class BurstyStream:
    """A codec that emits its first packet after START_DELAY frames, keeps pace for a while,
    then holds BURST frames and lets them out together."""

    class codec_context:  # noqa: N801 - stands for PyAV's attribute
        @staticmethod
        def open() -> None:
            pass

    def __init__(self) -> None:
        self.fed: list[int] = []
        self.out = 0

    def encode(self, frame):
        if frame is None:
            packets, self.out = [Packet(p) for p in self.fed[self.out :]], len(self.fed)
            return packets
        self.fed.append(frame.pts)
        i = frame.pts
        if i < START_DELAY or 20 <= i < 20 + BURST:
            return []
        release = len(self.fed) - START_DELAY if i < 20 else len(self.fed)
        packets = [Packet(p) for p in self.fed[self.out : release]]
        self.out = max(self.out, release)
        return packets


class RescalingContainer:
    """mux() rescales each packet's pts to the stream's time base (1/15360 at 30 fps), as
    PyAV's does."""

    def __init__(self, *_args, **_kwargs) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *_exc) -> None:
        pass

    def mux(self, packets) -> None:
        for packet in packets:
            packet.pts *= 512


def test_frames_held_back_counts_a_burst_in_frames(monkeypatch):
    monkeypatch.setattr(probe.av, "open", RescalingContainer)
    monkeypatch.setattr(probe, "add_video_stream", lambda container, video: BurstyStream())
    monkeypatch.setattr(probe, "_time_camera_like", lambda *args: 0.001)
    monkeypatch.setattr(probe.priority, "apply", lambda threads, prio: None)
    video = VideoSettings(30, 64, 48, "fake-bursty", "yuv420p", {}, "idle", "thread")
    held, _cost = probe._probe_once(probe.probe_key(video), ())
    # at frame 27, frames 17..27 are fed and not out: the lag of 3 plus the burst of 8
    assert held == START_DELAY + BURST, held
