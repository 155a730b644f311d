"""The steady uplink-rate estimate allows for the token bucket's burst and ignores uploads that are mostly burst."""

from __future__ import annotations

import pytest

from device_agent.channel_estimate import steady_rate_bps


def _tbf_time(nbytes: int, rate_bps: float, burst: int, line_bps: float = 1e9) -> float:
    """Upload time through a full bucket: the burst at line rate, the rest at the shaped rate."""
    return 8 * min(nbytes, burst) / line_bps + 8 * max(0, nbytes - burst) / rate_bps


def test_burst_credit_is_subtracted():
    rate, burst = 19.4e6, 40_000
    uploads = [(n, _tbf_time(n, rate, burst)) for n in (200_000, 150_000, 300_000, 200_000)]
    naive = 8 * sum(n for n, _ in uploads) / sum(t for _, t in uploads)
    assert naive > 1.15 * rate  # what the median-of-window estimate reported
    assert steady_rate_bps(uploads, burst) == pytest.approx(rate, rel=0.01)


def test_short_uploads_are_left_out_and_none_when_nothing_sustained():
    rate, burst = 10e6, 20_000
    uploads = [(30_000, _tbf_time(30_000, rate, burst)), (400_000, _tbf_time(400_000, rate, burst))]
    assert steady_rate_bps(uploads, burst) == pytest.approx(rate, rel=0.01)
    assert steady_rate_bps([(30_000, 0.001)], burst) is None
    assert steady_rate_bps([(0, 0.0)], 0) is None  # L = n: nothing uploaded


def test_no_bucket_is_plain_bytes_over_time():
    assert steady_rate_bps([(1000, 0.001), (3000, 0.003)], 0) == pytest.approx(8e6)


def test_an_upload_the_host_delayed_does_not_lower_the_estimate():
    rate, burst = 8e6, 10_000
    clean = _tbf_time(200_000, rate, burst)
    uploads = [(200_000, clean * 1.4), (200_000, clean), (200_000, clean * 1.2)]
    assert steady_rate_bps(uploads, burst) == pytest.approx(rate, rel=0.01)
