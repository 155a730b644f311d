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
