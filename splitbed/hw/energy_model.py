"""Modelled compute energy, the paper's formula E = eta * N * phi * f^2 / c.

``phi`` is the power coefficient in W/(cycle/s)^3 (dynamic power phi f^3 for
a time N/(f c)), ``c`` FLOPs per cycle, ``eta`` the PUE. Use ``calibrate`` to
fit ``phi`` where a meter exists.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from splitbed.errors import InvalidArgument
from splitbed.hw.energy_base import SOURCE_MODEL, EnergyMeter, EnergyReading, EnergyToken


def _positive(name: str, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgument(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class ModelEnergyMeter(EnergyMeter):
    name = "model"
    measured = False

    def __init__(
        self,
        phi: float,
        flops_per_cycle: float,
        pue: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.phi = _positive("phi", phi)
        self.flops_per_cycle = _positive("flops_per_cycle", flops_per_cycle)
        self.pue = _positive("pue", pue)
        self._clock = clock

    def joules(self, flops: float, freq_hz: float) -> float:
        """eta * N * phi * f^2 / c."""
        if not math.isfinite(flops) or flops < 0:
            raise InvalidArgument(f"flops must be non-negative, got {flops!r}")
        f = _positive("freq_hz", freq_hz)
        return self.pue * flops * self.phi * f * f / self.flops_per_cycle

    def _detail(self, freq_hz: float) -> str:
        return f"eta={self.pue:g}, phi={self.phi:g} W/(cycle/s)^3, c={self.flops_per_cycle:g}, f={freq_hz:g} Hz"

    def estimate(self, flops: float, freq_hz: float) -> EnergyReading:
        """Energy and the model's compute time N/(f c) for ``flops`` at ``freq_hz``."""
        j = self.joules(flops, freq_hz)
        return EnergyReading(j, flops / (freq_hz * self.flops_per_cycle), SOURCE_MODEL, False, self._detail(freq_hz))

    def begin(self) -> EnergyToken:
        return EnergyToken(self._clock())

    def end(self, token: EnergyToken, *, flops: float | None = None, freq_hz: float | None = None) -> EnergyReading:
        """Modelled energy of ``flops`` at ``freq_hz``; ``seconds`` is the measured wall time."""
        if flops is None or freq_hz is None:
            raise InvalidArgument("the model energy meter needs end(token, flops=..., freq_hz=...)")
        return EnergyReading(self.joules(flops, freq_hz), self._clock() - token.t0, SOURCE_MODEL, False,
                             self._detail(freq_hz))
