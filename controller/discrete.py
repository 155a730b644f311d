"""Clocks on the hardware's discrete steps.

Real clocks snap to steps (cpufreq's available frequencies, NVML's supported
clocks, an emulated profile's table). A plan whose f or f~ lies between steps
would be applied one step lower (or higher) than planned and its prediction
would be wrong by that ratio. So, after the continuous optimum:

1. take, per side that has steps and runs work, the step just below and just
   above the continuous clock (within [f_min, f_max]);
2. re-solve P1 with the clocks fixed at each combination, which stays convex
   (it is the fixed-clocks scheme with those values);
3. keep the best feasible result: lowest objective, then lower energy, then
   lower latency.

The neighbours of the continuous optimum are not guaranteed to hold the
discrete optimum, but with at most four convex solves per split they are
what a warm planner can afford on every re-plan.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from controller.system_model import Knobs, Processor, SplitTask

REL_TOL = 1e-9


def neighbour_steps(freq_hz: float, proc: Processor) -> list[float]:
    """The steps of `proc` just below and just above `freq_hz` (one if it sits on a step)."""
    usable = [f for f in proc.steps_hz if proc.f_min_hz * (1 - REL_TOL) <= f <= proc.f_max_hz * (1 + REL_TOL)]
    if not usable:
        return []
    below = [f for f in usable if f <= freq_hz * (1 + REL_TOL)]
    above = [f for f in usable if f >= freq_hz * (1 - REL_TOL)]
    out = set()
    if below:
        out.add(max(below))
    if above:
        out.add(min(above))
    return sorted(out)


def applied_step(freq_hz: float, proc: Processor) -> float:
    """The clock the hardware applies for a requested cap: the highest step not above it (clock backends snap
    down), or the lowest step when the request lies below every step."""
    usable = [f for f in proc.steps_hz if proc.f_min_hz * (1 - REL_TOL) <= f <= proc.f_max_hz * (1 + REL_TOL)]
    if not usable:
        return freq_hz
    below = [f for f in usable if f <= freq_hz * (1 + REL_TOL)]
    return max(below) if below else min(usable)


def _side_choices(present: bool, pin: float | None, freq_hz: float, proc: Processor) -> Sequence[float | None]:
    if not present or pin is not None or freq_hz <= 0.0 or not proc.steps_hz:
        return [pin]  # nothing to snap: keep the task's own setting (free or pinned)
    return neighbour_steps(freq_hz, proc) or [pin]


def on_steps(task: SplitTask, knobs: Knobs) -> bool:
    """True when every clock that runs work sits on one of its side's steps (or its side has none)."""
    m = task.model
    for present, freq, proc in (
        (m.has_device and knobs.rho > 0.0, knobs.freq_device_hz, m.device),
        (m.has_server and knobs.rho_s > 0.0, knobs.freq_server_hz, m.server),
    ):
        if present and freq > 0.0 and proc.steps_hz and not any(abs(f - freq) <= REL_TOL * freq for f in proc.steps_hz):
            return False
    return True


def step_tasks(task: SplitTask, knobs: Knobs) -> list[SplitTask]:
    """The task re-posed with its clocks fixed at each neighbouring combination of steps."""
    m = task.model
    dev = _side_choices(m.has_device and knobs.rho > 0.0, task.freq_device_hz, knobs.freq_device_hz, m.device)
    srv = _side_choices(m.has_server and knobs.rho_s > 0.0, task.freq_server_hz, knobs.freq_server_hz, m.server)
    return [replace(task, freq_device_hz=fd, freq_server_hz=fs) for fd, fs in itertools.product(dev, srv)]
