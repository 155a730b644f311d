"""Fitting phi (and PUE) from energy measured at several clocks."""

from __future__ import annotations

import pytest

from splitbed.hw.calibrate import CalibrationPoint, calibrate, fit_phi
from splitbed.hw.clock import AppliedClock, ClockBackend, EmulatedClock
from splitbed.hw.energy import EnergyMeter, EnergyReading, EnergyToken, ModelEnergyMeter

C = 32.0
PHI_TRUE = 7e-29


class StepClock(ClockBackend):
    """A 'real' clock with 100 MHz steps that records resets."""

    name = "fake-real"
    emulated = False

    def __init__(self) -> None:
        self.cap = 2e9
        self.resets = 0

    def max_hz(self) -> float:
        return 2e9

    def min_hz(self) -> float:
        return 0.5e9

    def steps_hz(self) -> list[float] | None:
        return [i * 1e8 for i in range(5, 21)]

    def current_hz(self) -> float:
        return self.cap

    def set_cap(self, hz: float) -> AppliedClock:
        self.cap = float(int(hz // 1e8) * 1e8)
        return AppliedClock(hz, self.cap, self.name, False)

    def reset(self) -> AppliedClock:
        self.resets += 1
        self.cap = 2e9
        return AppliedClock(2e9, 2e9, self.name, False)


class PhysicsMeter(EnergyMeter):
    """A chip meter that sees phi * f^3 watts for N/(f c) seconds, times ``scale`` and per-call noise."""

    name = "physics"
    measured = True

    def __init__(self, clock: StepClock, flops: float, scale: float = 1.0, noise: list[float] | None = None) -> None:
        self.clock, self.flops, self.scale = clock, flops, scale
        self.noise = list(noise or [])

    def begin(self) -> EnergyToken:
        return EnergyToken(0.0)

    def end(self, token: EnergyToken, *, flops: float | None = None, freq_hz: float | None = None) -> EnergyReading:
        f = self.clock.cap
        noise = self.noise.pop(0) if self.noise else 1.0
        joules = self.scale * PHI_TRUE * f**3 * self.flops / (f * C) * noise
        return EnergyReading(joules, self.flops / (f * C), "measured:physics", True)


def test_recovers_phi_from_noiseless_measurements() -> None:
    clock = StepClock()
    meter = PhysicsMeter(clock, 1e10)
    result = calibrate(clock, meter, lambda: 1e10, [0.8e9, 1.25e9, 2e9], flops_per_cycle=C, phi=5e-29)
    assert result.measured and result.source == "measured:physics"
    assert result.phi == pytest.approx(PHI_TRUE, rel=1e-9)
    assert result.residual_rel == pytest.approx(0.0, abs=1e-9)
    assert [p.applied_hz for p in result.points] == [0.8e9, 1.2e9, 2e9]  # snapped caps are what is fitted
    assert clock.resets == 1
    assert not result.pue_measured and result.pue == 1.0


def test_noise_shows_up_in_the_residual() -> None:
    clock = StepClock()
    meter = PhysicsMeter(clock, 1e10, noise=[1.1, 0.9, 1.05, 0.95])
    result = calibrate(clock, meter, lambda: 1e10, [0.6e9, 1e9, 1.5e9, 2e9], flops_per_cycle=C, phi=5e-29)
    assert result.phi == pytest.approx(PHI_TRUE, rel=0.1)
    assert result.residual_rel is not None and 0.02 < result.residual_rel < 0.15


def test_facility_meter_gives_pue() -> None:
    clock = StepClock()
    result = calibrate(clock, PhysicsMeter(clock, 1e10), lambda: 1e10, [1e9, 2e9], flops_per_cycle=C, phi=5e-29,
                       facility_meter=PhysicsMeter(clock, 1e10, scale=1.6))
    assert result.pue_measured and result.pue == pytest.approx(1.6)
    assert result.phi == pytest.approx(PHI_TRUE)


def test_without_a_meter_keeps_configured_values() -> None:
    clock = StepClock()
    result = calibrate(clock, ModelEnergyMeter(5e-29, C), lambda: 1e9, [1e9], flops_per_cycle=C, phi=5e-29, pue=1.2)
    assert not result.measured and result.phi == 5e-29 and result.pue == 1.2
    assert "no energy meter" in result.reason


def test_emulated_clock_is_not_calibrated() -> None:
    clock = EmulatedClock("paper-device", host_flops_per_s=1e12)
    result = calibrate(clock, PhysicsMeter(StepClock(), 1e9), lambda: 1e9, [1e9], flops_per_cycle=C, phi=5e-29)
    assert not result.measured and "emulated" in result.reason


def test_fit_phi_through_origin() -> None:
    points = [CalibrationPoint(f, f, 1e9, PHI_TRUE * f**2 * 1e9 / C, 1.0) for f in (1e9, 2e9)]
    phi, residual = fit_phi(points, C, pue=2.0)
    assert phi == pytest.approx(PHI_TRUE / 2.0)
    assert residual == pytest.approx(0.0, abs=1e-12)
