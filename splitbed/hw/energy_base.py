"""The energy-meter interface and the reading every meter returns.

A meter brackets a piece of work: ``token = meter.begin()`` ... ``meter.end(token)``.
Every reading names its source (``measured:<meter>`` or ``modelled:<formula>``)
so reports never mix measured and modelled joules silently.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

from splitbed.errors import InvalidArgument

SOURCE_RAPL = "measured:rapl"
SOURCE_NVML = "measured:nvml"
SOURCE_JETSON = "measured:jetson-ina3221"
SOURCE_MODEL = "modelled:phi*f^2*N/c"
SOURCE_UPLOAD = "modelled:p*t_upload"


@dataclass(frozen=True)
class EnergyReading:
    """Energy over an interval.

    joules: energy, J. seconds: wall time of the interval, s.
    source: ``measured:<meter>`` or ``modelled:<formula>``.
    measured: True when a meter produced ``joules``.
    detail: free text (zones, rails, coefficients).
    """

    joules: float
    seconds: float
    source: str
    measured: bool
    detail: str = ""

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class EnergyToken:
    """Opaque start-of-interval state returned by ``begin``."""

    t0: float
    raw: tuple[float, ...] = ()


class EnergyMeter(ABC):
    """Brackets work and returns the energy it took."""

    name: str = "abstract"
    measured: bool = False

    @abstractmethod
    def begin(self) -> EnergyToken:
        """Start an interval."""

    @abstractmethod
    def end(self, token: EnergyToken, *, flops: float | None = None, freq_hz: float | None = None) -> EnergyReading:
        """Close the interval; ``flops``/``freq_hz`` are used only by the model meter."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop samplers and release handles."""


def upload_energy(power_w: float, measured_upload_s: float) -> EnergyReading:
    """Upload energy p x t_upload (transmit power times the measured upload time)."""
    if not math.isfinite(power_w) or power_w < 0:
        raise InvalidArgument(f"power_w must be non-negative finite watts, got {power_w!r}")
    if not math.isfinite(measured_upload_s) or measured_upload_s < 0:
        raise InvalidArgument(f"measured_upload_s must be non-negative finite seconds, got {measured_upload_s!r}")
    return EnergyReading(power_w * measured_upload_s, measured_upload_s, SOURCE_UPLOAD, False,
                         f"p={power_w:g} W x measured t_upload={measured_upload_s:.6f} s")
