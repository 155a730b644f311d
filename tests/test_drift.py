"""Drift re-plans need a confirmed deviation (hysteresis) and keep a minimum interval."""

from __future__ import annotations

import random

from controller.drift import DriftGate


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_noisy_static_channel_never_triggers():
    clock = Clock()
    gate = DriftGate(threshold=0.2, confirm=2, min_interval_s=10.0, clock=clock)
    rng = random.Random(1)
    planned = 1e-9
    for i in range(500):
        clock.t += 1.0
        # +-10 % noise, and every 7th report a lone +30 % excursion (a burst-credited short window)
        measured = planned * (1.3 if i % 7 == 0 else rng.uniform(0.9, 1.1))
        assert gate.check("d", planned, measured) is None


def test_step_change_triggers_once_then_waits_the_interval():
    clock = Clock()
    gate = DriftGate(threshold=0.2, confirm=2, min_interval_s=10.0, clock=clock)
    planned, stepped = 1e-9, 0.5e-9
    results = []
    for _ in range(3):
        clock.t += 1.0
        results.append(gate.check("d", planned, stepped))
    assert results[0] is None and results[1] == stepped and results[2] is None  # the third report starts a new count
    # Still off (the plan was not updated, say): no second re-plan before min_interval_s.
    clock.t += 1.0
    assert gate.check("d", planned, stepped) is None
    clock.t = 12.0
    assert gate.check("d", planned, stepped) == stepped


def test_hysteresis_band_neither_confirms_nor_clears():
    clock = Clock()
    gate = DriftGate(threshold=0.2, confirm=2, min_interval_s=0.0, clock=clock)
    assert gate.check("d", 1.0, 1.3) is None
    assert gate.check("d", 1.0, 1.15) is None  # in the band: the count holds
    assert gate.check("d", 1.0, 1.3) == 1.3
    assert gate.check("d", 1.0, 1.3) is None
    assert gate.check("d", 1.0, 1.05) is None  # back within threshold * release: cleared
    assert gate.check("d", 1.0, 1.3) is None


def test_opposite_sides_and_stale_reports_do_not_confirm():
    gate = DriftGate(threshold=0.2, confirm=2, min_interval_s=0.0)
    assert gate.check("d", 1.0, 1.5) is None
    assert gate.check("d", 1.0, 0.5) is None  # the other side: the count restarts
    assert gate.check("d", 1.0, 0.5, report_version=3, plan_version=4) is None  # window of an older plan
    assert gate.check("d", 1.0, 0.5, report_version=4, plan_version=4) == 0.5


def test_a_step_is_adopted_once_it_has_settled():
    """Reports straddling the change (measured in compose and over tbf) are not planned for."""
    gate = DriftGate(threshold=0.2, confirm=2, min_interval_s=0.0)
    planned = 2.58e-11
    seen = [gate.check("d", planned, g * 1e-11) for g in (1.70, 1.39, 1.12, 1.12)]
    assert seen[:3] == [None, None, None]
    assert seen[3] == 1.12e-11


def test_rate_drift_judges_the_rate_not_the_amplified_gain() -> None:
    """At high SNR a few % of rate noise is tens of % of gain: only a real change of r(p) re-plans."""
    from controller.drift import rate_drift
    from splitbed.channel import gain_from_rate, rate_bps
    from splitbed.v1 import control_pb2

    clock = [0.0]
    gate = DriftGate(threshold=0.2, confirm=2, min_interval_s=0.0, clock=lambda: clock[0])
    link = control_pb2.LinkProfile(bandwidth_hz=20e6, noise_psd_w_per_hz=2e-19, gain=1.1e-9, p_max_w=0.5)
    p = 0.33
    planned = rate_bps(p, link.bandwidth_hz, link.noise_psd_w_per_hz, link.gain)
    noisy = gain_from_rate(planned * 0.93, p, link.bandwidth_hz, link.noise_psd_w_per_hz)
    assert noisy < link.gain * 0.8  # 7 % of rate is more than 20 % of gain here
    for _ in range(4):
        assert rate_drift(gate, "d", link, p, noisy, report_version=1, plan_version=1) is None
    halved = gain_from_rate(planned * 0.5, p, link.bandwidth_hz, link.noise_psd_w_per_hz)
    assert rate_drift(gate, "d", link, p, halved, report_version=1, plan_version=1) is None  # not confirmed yet
    adopted = rate_drift(gate, "d", link, p, halved, report_version=1, plan_version=1)
    assert adopted is not None and abs(adopted / halved - 1) < 1e-9
    # L = n (no power) and a gain out of range say nothing.
    assert rate_drift(gate, "d", link, 0.0, halved, report_version=1, plan_version=1) is None
    assert rate_drift(gate, "d", link, p, 2.0, report_version=1, plan_version=1) is None
