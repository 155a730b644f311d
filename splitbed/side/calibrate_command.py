"""The `calibrate` command of the agent and the server: fit phi (and PUE) from measured energy.

The fit itself is `splitbed.hw.calibrate`; this module runs it on a side's hardware and prints it.

Runs the side's own model part as the workload at several clock caps under
the side's energy meter. Where no meter or no real clock exists (these CI
machines) it keeps the configured values and says so.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.table import Table

from splitbed.hw.calibrate import CalibrationResult, calibrate
from splitbed.side.hardware import ComputeHardware
from splitbed.side.settings import SideSettings
from splitbed.side.timed import Part, flops_of, sample_inputs, untimed_forward


def default_freqs(hw: ComputeHardware, count: int = 5) -> list[float]:
    clock = hw.clock
    if clock is None:
        return []
    steps = clock.steps_hz()
    if steps:
        idx = np.linspace(0, len(steps) - 1, min(count, len(steps))).round().astype(int)
        return [steps[i] for i in sorted(set(idx.tolist()))]
    return [float(f) for f in np.linspace(clock.min_hz(), clock.max_hz(), count)]


def run_calibration(hw: ComputeHardware, workload: Callable[[], float], *, freqs: list[float] | None = None,
                    repeats: int = 2) -> CalibrationResult:
    if hw.clock is None:
        return CalibrationResult(False, hw.phi, hw.pue, 0.0, source="configured",
                                 reason="no clock backend (--clock none): cannot vary the frequency")
    c = hw.flops_per_cycle or 32.0
    return calibrate(hw.clock, hw.meter, workload, freqs or default_freqs(hw), flops_per_cycle=c,
                     phi=hw.phi, pue=hw.pue, repeats=repeats)


def report(result: CalibrationResult, as_json: bool, console: Console | None = None) -> None:
    console = console or Console()
    if as_json:
        console.print_json(json.dumps(dataclasses.asdict(result)))
        return
    if not result.measured:
        console.print(f"[yellow]not calibrated: {result.reason}. Keeping the configured phi={result.phi:g} "
                      f"W/(cycle/s)^3 and PUE={result.pue:g}.")
        return
    table = Table(title=f"calibration ({result.source})")
    for col in ("requested MHz", "applied MHz", "GFLOPs", "energy J", "seconds"):
        table.add_column(col, justify="right")
    for p in result.points:
        table.add_row(f"{p.requested_hz / 1e6:.0f}", f"{p.applied_hz / 1e6:.0f}", f"{p.flops / 1e9:.2f}",
                      f"{p.joules:.4f}", f"{p.seconds:.3f}")
    console.print(table)
    console.print(f"phi = {result.phi:.4g} W/(cycle/s)^3 (RMS relative residual {result.residual_rel:.3f}); "
                  f"PUE = {result.pue:g} ({'measured' if result.pue_measured else 'configured'})")


def calibrate_command(settings: SideSettings, part: Part, seq_len: int, freqs: list[float] | None,
                      as_json: bool) -> int:
    """Fit this side's phi with its own model part as the workload (10 forward passes a point)."""
    hw = ComputeHardware.from_settings(settings)
    inputs = sample_inputs(part, seq_len)
    flops = flops_of(part, seq_len)

    def workload() -> float:
        for _ in range(10):
            untimed_forward(part, *inputs)
        return 10.0 * flops

    try:
        report(run_calibration(hw, workload, freqs=freqs), as_json)
    finally:
        hw.close()
    return 0
