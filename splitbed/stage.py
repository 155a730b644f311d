"""One compute stage's hardware: its clock cap and its energy meter.

The device agent and the edge server each own one. It turns the measured
compute time of a request into the stage time under the applied clock cap
(emulated clocks stretch; real clocks already run slower), and gives the
stage's energy, labelled measured or modelled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from splitbed.hw.clock import ClockBackend, EmulatedClock, get_profile, make_clock, measure_host_flops
from splitbed.hw.clock.base import AppliedClock
from splitbed.hw.energy import EnergyMeter, EnergyReading, ModelEnergyMeter, make_energy_meter
from splitbed.hw.memory import MemoryMeter
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

NOMINAL_HZ = 1e9


@dataclass
class StageTiming:
    compute_s: float  # measured host compute + emulated stretch
    stretch_s: float
    energy: EnergyReading | None


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


def memory_values() -> tuple[dict[str, float], dict[str, str]]:
    """Peak and current RSS of this process (and GPU memory where torch sees a GPU), for telemetry."""
    gpu_now = gpu_peak = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu_now, gpu_peak = torch.cuda.memory_allocated, torch.cuda.max_memory_allocated
    except ImportError:
        pass
    reading = MemoryMeter(gpu_bytes=gpu_now, gpu_peak_bytes=gpu_peak).read()
    values = {"rss_bytes": float(reading.rss_bytes), "peak_rss_bytes": float(reading.peak_rss_bytes)}
    if reading.gpu_bytes is not None:
        values["gpu_bytes"] = float(reading.gpu_bytes)
    if reading.gpu_peak_bytes is not None:
        values["gpu_peak_bytes"] = float(reading.gpu_peak_bytes)
    return values, {k: reading.source for k in values}


def best_flops_per_s(run: Callable[[], object], flops: float, *, rounds: int = 3, runs: int = 4,
                     pause_s: float = 0.3) -> float:
    """Achieved FLOP/s of `run` (which does `flops`): the fastest of several runs in rounds spaced in time.

    One warm-up run first; the rounds are spread over about a second so a
    burst of other load (on a shared host, the other process starting up) does
    not become the profile the controller plans with.
    """
    run()
    best = float("inf")
    for r in range(rounds):
        if r:
            time.sleep(pause_s)
        for _ in range(runs):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
    return flops / best


class Stage:
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
        self.applied: AppliedClock | None = None

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
        self.applied = self.clock.set_cap(hz)
        source = "emulated" if self.applied.emulated else f"applied:{self.applied.backend}"
        return self.applied.applied_hz, source

    def begin(self) -> tuple[float, object]:
        return time.perf_counter(), self.meter.begin()

    def finish(self, started: tuple[float, object], flops: float) -> StageTiming:
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
        return StageTiming(measured + stretch, stretch, energy)

    def compute_profile(self, achieved_flops_per_s: float) -> control_pb2.ComputeProfile:
        """flops_per_cycle = achieved FLOP/s / f, with f read from the clock backend.

        A real clock's c is only known from this measurement, so the modelled
        energy meter is re-based on it.
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
            flops_per_cycle=achieved_flops_per_s / f if f > 0 else 0.0, f_max_hz=f_max,
            f_min_hz=clock.min_hz() if clock is not None else NOMINAL_HZ,
            clock_backend=clock.name if clock is not None else "none",
            clock_emulated=self.emulated, pue=self.pue, power_coeff=self.phi, clock_steps_hz=steps,
        )

    def close(self) -> None:
        if self.clock is not None:
            self.clock.close()
        self.meter.close()
