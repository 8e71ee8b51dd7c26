"""RateMeter on a clock the test moves: frames an encoder holds do not read as falling behind,
a real deficit does."""

import math

import pytest

from shmpipe.recorder import rate_meter
from shmpipe.recorder.rate_meter import RateMeter


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(rate_meter.time, "monotonic", lambda: now[0])
    return now


def test_an_encoder_holding_the_latest_frames_reads_the_input_rate(clock):
    meter = RateMeter()
    meter.restart(written=0, encoded=0)  # frame 0 arrives now
    clock[0] += 0.1  # frames 1..3 arrived at 30 fps; the encoder finished frame 0 only
    rates = meter.rates(written=4, encoded=1)
    assert rates.input_fps == pytest.approx(30)
    assert rates.encode_fps == pytest.approx(30), "3 frames in hand read as falling behind"
    assert rates.finish_wait_s == pytest.approx(0.1)


def test_an_encoder_that_falls_behind_reads_its_own_rate(clock):
    meter = RateMeter()
    meter.restart(written=0, encoded=0)
    for second in range(1, 4):  # 30 frames in, 20 encoded, every second
        clock[0] += 1.0
        rates = meter.rates(written=1 + 30 * second, encoded=20 * second)
    assert rates.input_fps == pytest.approx(30)
    assert rates.encode_fps == pytest.approx(20)
    assert rates.finish_wait_s == pytest.approx(31 / 20)


def test_an_encoder_that_encodes_nothing_projects_no_end(clock):
    meter = RateMeter()
    meter.restart(written=0, encoded=0)
    clock[0] += 2.0
    rates = meter.rates(written=61, encoded=0)
    assert (rates.encode_fps, rates.finish_wait_s) == (0.0, math.inf)


def test_the_first_call_at_the_episodes_first_frame_reports_no_wait(clock):
    meter = RateMeter()
    meter.restart(written=5, encoded=5)
    rates = meter.rates(written=6, encoded=5)  # same instant: no span yet
    assert rates == (0.0, 0.0, 0.0)
