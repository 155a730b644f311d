"""The hardware of one side's compute: its clock cap and its energy meter.

The device agent and the edge server each own one. It turns the measured
compute time of a request into the compute time under the applied clock cap
(emulated clocks stretch; real clocks already run slower), and gives the
compute's energy, labelled measured or modelled.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from splitbed.hw.clock import ClockBackend, EmulatedClock, get_profile, make_clock, measure_host_flops
from splitbed.hw.energy import EnergyMeter, EnergyReading, ModelEnergyMeter, make_energy_meter
from splitbed.v1 import control_pb2

if TYPE_CHECKING:
    from splitbed.side.settings import SideSettings

logger = logging.getLogger(__name__)

NOMINAL_HZ = 1e9


@dataclass
class ComputeTiming:
    compute_s: float  # measured host compute + emulated stretch
    stretch_s: float
    energy: EnergyReading | None
    started_s: float = 0.0  # perf_counter when the compute began (the end of any queueing)


def host_flops_for(profile: str) -> float:
    """This host's FLOP/s, measured again for longer when a short burst of other load made it look too slow.

    The emulated clock refuses a profile faster than the host; a process that
    starts while another is loading a model should not be refused for that.
    """
    flops = measure_host_flops()
    peak = get_profile(profile).peak_flops_per_s
    if flops < peak:
        logger.info("host measured %.1f GFLOP/s < %.1f of profile %s: measuring for longer", flops / 1e9,
                    peak / 1e9, profile)
        flops = max(flops, measure_host_flops(seconds=3.0, windows=60))
    return flops


class ComputeHardware:
    """Clock + energy meter of one side; `clock_kind='none'` runs at host speed with no cap."""

    def __init__(self, clock_kind: str, profile: str, energy_kind: str, *, pue: float, phi: float,
                 host_flops_per_s: float | None = None) -> None:
        self.clock: ClockBackend | None = None
        if clock_kind in ("emulated", "auto") and host_flops_per_s is None:
            host_flops_per_s = host_flops_for(profile)
        if clock_kind != "none":
            self.clock = make_clock(clock_kind, profile=profile, host_flops_per_s=host_flops_per_s)
        c = self.flops_per_cycle or 32.0
        self.pue, self.phi = pue, phi
        self.meter: EnergyMeter = make_energy_meter(energy_kind, phi=phi, flops_per_cycle=c, pue=pue)

    @classmethod
    def from_settings(cls, settings: SideSettings) -> ComputeHardware:
        """The hardware a side's settings name (--clock, --clock-profile, --energy, --pue, --power-coeff)."""
        return cls(settings.clock, settings.clock_profile, settings.energy, pue=settings.pue,
                   phi=settings.power_coeff, host_flops_per_s=settings.host_flops_per_s)

    @property
    def emulated(self) -> bool:
        return isinstance(self.clock, EmulatedClock)

    @property
    def flops_per_cycle(self) -> float | None:
        return self.clock.flops_per_cycle if isinstance(self.clock, EmulatedClock) else None

    @property
    def freq_hz(self) -> float:
        return self.clock.current_hz() if self.clock is not None else 0.0

    def apply_freq(self, hz: float, side: str) -> tuple[float, str]:
        """Cap the clock at a plan's `hz`; returns the value to report and where it came from.

        A planned 0 Hz means this side has no stage at the split; without a
        clock backend the plan's value is reported as not applied.
        """
        if self.clock is None:
            return hz, "not applied: no clock backend"
        if hz <= 0:
            return hz, f"not applied: no {side} stage"
        applied = self.clock.set_cap(hz)
        source = "emulated" if applied.emulated else f"applied:{applied.backend}"
        return applied.applied_hz, source

    def begin(self) -> tuple[float, object]:
        return time.perf_counter(), self.meter.begin()

    def finish(self, started: tuple[float, object], flops: float) -> ComputeTiming:
        """Call right after the compute: sleeps the emulated stretch, returns timing and energy."""
        t0, token = started
        measured = time.perf_counter() - t0
        stretch = 0.0
        if isinstance(self.clock, EmulatedClock):
            stretch = self.clock.sleep_stretch(flops, measured)
        energy = None
        freq = self.freq_hz
        if isinstance(self.meter, ModelEnergyMeter):
            if freq > 0:
                energy = self.meter.estimate(flops, freq)
        else:
            energy = self.meter.end(token, flops=flops, freq_hz=freq or None)  # type: ignore[arg-type]
        return ComputeTiming(measured + stretch, stretch, energy, t0)

    def compute_profile(self, achieved_flops_per_s: float) -> control_pb2.ComputeProfile:
        """flops_per_cycle = achieved FLOP/s / f, with f read from the clock backend.

        A real clock's c is only known from this measurement, so the modelled
        energy meter is re-based on it. Where nothing was measured (no part at
        this split) an emulated clock's own c is reported.
        """
        clock = self.clock
        # No clock backend: the side runs at host speed with no cap. It is described at a nominal 1 GHz so
        # that c = FLOP/s / f stays meaningful; the controller pins such a side's frequency at f_max.
        f = clock.current_hz() if clock is not None else NOMINAL_HZ
        f_max = clock.max_hz() if clock is not None else NOMINAL_HZ
        steps = (clock.steps_hz() or []) if clock is not None else []
        measured_c = achieved_flops_per_s / f if f > 0 else 0.0
        if clock is not None and not self.emulated and measured_c > 0 and isinstance(self.meter, ModelEnergyMeter):
            self.meter = ModelEnergyMeter(self.phi, measured_c, self.pue)
        return control_pb2.ComputeProfile(
            achieved_flops_per_s=achieved_flops_per_s, clock_hz=f,
            flops_per_cycle=measured_c if measured_c > 0 else (self.flops_per_cycle or 0.0), f_max_hz=f_max,
            f_min_hz=clock.min_hz() if clock is not None else NOMINAL_HZ,
            clock_backend=clock.name if clock is not None else "none",
            clock_emulated=self.emulated, pue=self.pue, power_coeff=self.phi, clock_steps_hz=steps,
        )

    def close(self) -> None:
        if self.clock is not None:
            self.clock.close()
        self.meter.close()
