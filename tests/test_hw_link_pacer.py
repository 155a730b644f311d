"""Token-bucket pacer: rate from r(p), pacing math, and a short real-time throughput check."""

from __future__ import annotations

import time

import pytest

from splitbed.channel import rate_bps
from splitbed.errors import FailedPrecondition, InvalidArgument
from splitbed.hw.link import PacerLink, make_link

B, N0, G = 5e6, 2e-19, 1e-3 * 500 ** -2.8  # the paper's channel at 500 m


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_apply_uses_the_channel_rate() -> None:
    link = make_link("pacer")
    applied = link.apply(0.5, bandwidth_hz=B, noise_psd=N0, gain=G)
    assert applied.rate_bps == pytest.approx(rate_bps(0.5, B, N0, G))
    assert applied.power_w == 0.5
    assert applied.emulated is True and applied.backend == "pacer" and applied.rate_source == "emulated:pacer"


def test_reservations_follow_the_rate_exactly() -> None:
    clock = FakeClock()
    link = PacerLink(burst_bytes=1000, clock=clock)
    link.set_rate_bps(8000)  # 1000 bytes/s
    assert link.reserve(1000) == 0.0  # the burst
    assert link.reserve(500) == pytest.approx(0.5)
    assert link.reserve(500) == pytest.approx(1.0)  # queued behind the first reservation
    clock.t = 1.0
    assert link.reserve(0) == 0.0  # debt repaid
    clock.t = 5.0  # idle time refills at most one burst
    assert link.reserve(1500) == pytest.approx(0.5)


def test_rate_change_applies_to_later_bytes() -> None:
    clock = FakeClock()
    link = PacerLink(burst_bytes=100, clock=clock)
    link.set_rate_bps(800)
    link.reserve(100)
    link.set_rate_bps(8000)
    assert link.reserve(1000) == pytest.approx(1.0)


def test_pace_before_apply_and_bad_inputs() -> None:
    link = PacerLink()
    with pytest.raises(FailedPrecondition, match="apply"):
        link.pace_sync(10)
    with pytest.raises(InvalidArgument):
        link.apply(0.0, bandwidth_hz=B, noise_psd=N0, gain=G)
    with pytest.raises(InvalidArgument):
        link.set_rate_bps(-1)
    with pytest.raises(InvalidArgument):
        PacerLink(burst_bytes=0)


async def test_async_pace_throughput_matches_rate() -> None:
    link = PacerLink(burst_bytes=4096)
    rate = 3.2e6  # 400 kB/s; 300 kB takes ~0.75 s
    link.set_rate_bps(rate)
    chunk, total = 4096, 300 * 1024
    start = time.perf_counter()
    sent = 0
    while sent < total:
        await link.pace(chunk)
        sent += chunk
    elapsed = time.perf_counter() - start
    throughput = (sent - 4096) * 8 / elapsed  # the first burst goes out free
    assert throughput == pytest.approx(rate, rel=0.10)


def test_sync_pace_throughput_matches_rate() -> None:
    link = PacerLink(burst_bytes=4096)
    rate = 4e6
    link.set_rate_bps(rate)
    chunk, total = 8192, 200 * 1024
    start = time.perf_counter()
    for _ in range(total // chunk):
        link.pace_sync(chunk)
    elapsed = time.perf_counter() - start
    assert (total - 4096) * 8 / elapsed == pytest.approx(rate, rel=0.10)
