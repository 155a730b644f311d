"""Fit the power coefficient phi (and the PUE where a facility meter exists).

At each clock cap f the workload runs under a meter; the model says
E/N = eta * phi * f^2 / c, so with x = f^2 / c and y = E / N a least-squares
line through the origin gives k = eta * phi. A chip-level meter (RAPL, NVML,
INA3221) sees no facility overhead (eta = 1 for its readings), so phi = k;
eta keeps its configured value unless a ``facility_meter`` (wall power) is
given, in which case eta is fitted as E_wall / E_chip.
Where no meter exists, or the clock is emulated (the host's real clock does
not move, so measured energy cannot follow f), the configured values are kept
and the result says why. The model has no static-power term: a large
relative residual means idle power dominates at these clocks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from splitbed.errors import FailedPrecondition, InvalidArgument
from splitbed.hw.clock.base import ClockBackend
from splitbed.hw.energy_base import EnergyMeter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationPoint:
    requested_hz: float
    applied_hz: float
    flops: float
    joules: float
    seconds: float
    facility_joules: float | None = None


@dataclass(frozen=True)
class CalibrationResult:
    """phi in W/(cycle/s)^3; pue is eta; residual_rel is the RMS relative error of E/N."""

    measured: bool
    phi: float
    pue: float
    flops_per_cycle: float
    residual_rel: float | None = None
    pue_measured: bool = False
    points: list[CalibrationPoint] = field(default_factory=list)
    source: str = ""
    reason: str = ""


def fit_phi(points: Sequence[CalibrationPoint], flops_per_cycle: float, pue: float) -> tuple[float, float]:
    """Least-squares phi (through the origin) of E/N = pue*phi*f^2/c, and the RMS relative residual."""
    if not points:
        raise InvalidArgument("no calibration points")
    xs = [p.applied_hz**2 / flops_per_cycle for p in points]
    ys = [p.joules / p.flops for p in points]
    k = sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs)
    residual = math.sqrt(sum(((k * x - y) / y) ** 2 for x, y in zip(xs, ys, strict=True) if y) / len(xs))
    return k / pue, residual


def fit_pue(points: Sequence[CalibrationPoint]) -> float:
    """Least-squares eta of E_wall = eta * E_chip through the origin."""
    pairs = [(p.joules, p.facility_joules) for p in points if p.facility_joules is not None]
    if not pairs:
        raise InvalidArgument("no facility readings")
    return sum(c * w for c, w in pairs) / sum(c * c for c, _ in pairs)


def _measure_at(clock: ClockBackend, meter: EnergyMeter, facility_meter: EnergyMeter | None,
                workload: Callable[[], float], hz: float, repeats: int) -> list[CalibrationPoint]:
    """`repeats` runs of the workload with the clock capped at `hz`, each under the meter(s)."""
    applied = clock.set_cap(hz)
    points = []
    for _ in range(repeats):
        token = meter.begin()
        facility_token = facility_meter.begin() if facility_meter is not None else None
        flops = float(workload())
        reading = meter.end(token, flops=flops, freq_hz=applied.applied_hz)
        facility = (facility_meter.end(facility_token, flops=flops, freq_hz=applied.applied_hz).joules
                    if facility_meter is not None and facility_token is not None else None)
        if flops <= 0 or reading.joules <= 0:
            raise FailedPrecondition(
                f"calibration at {applied.applied_hz:g} Hz got flops={flops:g}, joules={reading.joules:g}: "
                "the workload must do work and the meter must see it (make the workload longer)"
            )
        points.append(CalibrationPoint(hz, applied.applied_hz, flops, reading.joules, reading.seconds, facility))
    return points


def calibrate(
    clock: ClockBackend,
    meter: EnergyMeter,
    workload: Callable[[], float],
    freqs: Sequence[float],
    *,
    flops_per_cycle: float,
    phi: float,
    pue: float = 1.0,
    facility_meter: EnergyMeter | None = None,
    repeats: int = 1,
) -> CalibrationResult:
    """Run ``workload`` (returns the FLOPs it did) at each cap in ``freqs`` under ``meter``; fit phi.

    ``phi``/``pue`` are the configured values kept when nothing can be
    measured. The clock is reset afterwards.
    """
    if not freqs:
        raise InvalidArgument("calibration needs at least one frequency")
    if flops_per_cycle <= 0 or phi <= 0 or pue <= 0 or repeats < 1:
        raise InvalidArgument("flops_per_cycle, phi, pue must be positive and repeats >= 1")

    def keep(reason: str) -> CalibrationResult:
        logger.warning("calibration skipped, keeping phi=%g, eta=%g: %s", phi, pue, reason)
        return CalibrationResult(False, phi, pue, flops_per_cycle, reason=reason, source="configured")

    if not meter.measured:
        return keep(f"no energy meter ({meter.name} is a model)")
    if clock.emulated:
        return keep(f"clock {clock.name} is emulated: the host clock does not change, so measured energy "
                    "cannot follow the cap")
    try:
        points = [point for hz in freqs for point in _measure_at(clock, meter, facility_meter, workload, hz, repeats)]
    finally:
        clock.reset()
    pue_fit = pue
    pue_measured = facility_meter is not None and facility_meter.measured
    if pue_measured:
        pue_fit = fit_pue(points)
    # The chip meter sees no facility overhead: fit phi with eta = 1.
    phi_fit, residual = fit_phi(points, flops_per_cycle, 1.0)
    logger.info("calibrated phi=%g W/(cycle/s)^3 (eta=%g), RMS relative residual %.3f over %d points",
                phi_fit, pue_fit, residual, len(points))
    return CalibrationResult(True, phi_fit, pue_fit, flops_per_cycle, residual, pue_measured, points,
                             source=f"measured:{meter.name}")
