"""Channel math and the system model's formulas."""

from __future__ import annotations

import math

import pytest

from controller.system_model import log2_distortion_bound
from splitbed import channel
from splitbed.errors import InvalidArgument


def test_rate_and_inverses() -> None:
    g = channel.gain_from_distance(500.0, -30.0, 2.8)
    assert g == pytest.approx(2.77e-11, rel=1e-3)
    r = channel.rate_bps(0.5, 5e6, 2e-19, g)
    assert r == pytest.approx(5e6 * math.log2(1 + g * 0.5 / (5e6 * 2e-19)))
    assert channel.power_for_rate(r, 5e6, 2e-19, g) == pytest.approx(0.5, rel=1e-12)
    assert channel.gain_from_rate(r, 0.5, 5e6, 2e-19) == pytest.approx(g, rel=1e-12)
    assert channel.upload_time_s(0.0, 0.0, 5e6, 2e-19, g) == 0.0
    assert channel.upload_energy_j(1e6, 0.0, 5e6, 2e-19, g) == math.inf
    with pytest.raises(InvalidArgument, match="bandwidth_hz"):
        channel.rate_bps(0.5, 0.0, 2e-19, g)


def test_log2_bound_matches_direct_formula_for_small_models() -> None:
    for q, s, rho, rho_s, b, h in [(3.0, 5.0, 0.5, 0.25, 8.0, -1.0), (10.0, 2.0, 1.0, 0.0, 4.0, 0.5)]:
        n = q + s
        direct = (n / (math.sqrt(math.pi) * math.e) * 2 ** (-((rho * q + rho_s * s) * b - h * n) / n)
                  * (math.gamma(n / 2) / (2 * math.gamma(n))) ** (1 / n))
        assert log2_distortion_bound(rho, rho_s, q, s, b, h) == pytest.approx(math.log2(direct), rel=1e-12)


def test_log2_bound_is_finite_and_decreasing_for_large_models() -> None:
    vals = [log2_distortion_bound(r, r, 5.2e7, 5.7e7, 32.0, -2.0) for r in (0.0, 0.5, 1.0)]
    assert all(math.isfinite(v) for v in vals) and vals[0] > vals[1] > vals[2]
