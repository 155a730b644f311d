"""P1 solved exactly: the convex time/energy reformulation (docs/design.md section 2).

Each stage is described by its time t and energy e instead of its knobs:

    rho  N  <= f_max c t1                       (clock cap)
    rho^3   <= c^3/(eta phi N^3) e1 t1^2        (energy of the only clock that finishes in t1)
    tU >= theta / r(P_max),  tU exp(kappa/tU) <= a eU + tU    (upload; exponential cone)

and the knobs are recovered as f = rho N/(c t1), p = (2^(theta/(B tU)) - 1)/a.
Times are in units of T0 and energies of E0 so the conic solver sees numbers
near one whatever the budgets' magnitude. One `ExactProgram` is built per
`Structure` (which stages exist, which knobs are pinned, what is optimised) with
`cp.Parameter`s only, so a re-solve sets values and reuses the compiled problem.

Pinned knobs keep the problem convex: a pinned clock makes time and energy
linear in the ratio (t1 = rho N/(f c), e1 = eta phi N f^2 rho / c); a pinned
power fixes tU and eU outright.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import cvxpy as cp

from controller.cones import (
    ParamMaker,
    StageVars,
    build_stages,
    dict_maker,
    distortion_scale,
    kept_expr,
    measured_terms,
    objective_values,
    stage_values,
)
from controller.conic import RETRIES, CompiledConic
from controller.system_model import Knobs, SplitTask

logger = logging.getLogger(__name__)

Mode = Literal["quality", "min_latency", "min_energy"]
TIE_BREAK = 1e-6


@dataclass(frozen=True)
class Structure:
    """What distinguishes one compiled problem from another."""

    has_device: bool
    has_upload: bool
    has_server: bool
    pin_f_device: bool = False
    pin_f_server: bool = False
    pin_power: bool = False
    fmin_device: bool = False  # the clock cannot go below f_min: t <= rho N / (f_min c)
    fmin_server: bool = False
    mode: Mode = "quality"
    pieces_device: int = 0  # > 0: measured objective with that many affine pieces
    pieces_server: int = 0

    @classmethod
    def of(cls, task: SplitTask, mode: Mode = "quality") -> Structure:
        m = task.model
        measured = task.measured and mode == "quality"
        return cls(
            has_device=m.has_device,
            has_upload=m.has_upload,
            has_server=m.has_server,
            pin_f_device=m.has_device and task.freq_device_hz is not None,
            pin_f_server=m.has_server and task.freq_server_hz is not None,
            pin_power=m.has_upload and task.power_w is not None,
            fmin_device=m.has_device and task.freq_device_hz is None and m.device.f_min_hz > 0,
            fmin_server=m.has_server and task.freq_server_hz is None and m.server.f_min_hz > 0,
            mode=mode,
            pieces_device=task.fit_device.pieces if measured and task.fit_device is not None else 0,
            pieces_server=task.fit_server.pieces if measured and task.fit_server is not None else 0,
        )


@dataclass(frozen=True)
class RawSolution:
    """Solver output in SI units (before the knobs are recovered)."""

    status: str  # "optimal" | "infeasible" | "error"
    rho: float = 0.0
    rho_s: float = 0.0
    t_device: float = 0.0
    t_upload: float = 0.0
    t_server: float = 0.0
    e_device: float = 0.0
    e_upload: float = 0.0
    e_server: float = 0.0
    value: float = math.nan  # min_latency: seconds; min_energy: joules
    solve_time_s: float = 0.0
    message: str | None = None


def scalar(var: cp.Expression) -> float:
    """A solved cvxpy scalar's value as a float (0 if the solver left it unset)."""
    value: Any = var.value
    return 0.0 if value is None else float(value)


def _snap(value: float, lo: float, hi: float, atol: float = 1e-7) -> float:
    """Clip to [lo, hi] and snap solver round-off (about 1e-9) onto a bound, so "keep all" reads 1.0."""
    value = min(max(value, lo), hi)
    if hi - value <= atol:
        return hi
    return lo if value - lo <= atol else value


def raw_solution(sv: StageVars, task: SplitTask, ts: float, es: float,
                 read: Callable[[cp.Variable], float] = scalar, **extra: Any) -> RawSolution:
    """The solved stage variables of one pair, back in seconds and joules (`read` gives a variable's value)."""

    def val(d: dict[str, cp.Variable], key: str) -> float:
        v = d.get(key)
        return max(read(v), 0.0) if v is not None else 0.0

    return RawSolution(
        "optimal",
        rho=_snap(read(sv.rho), task.rho_lo, task.rho_hi),
        rho_s=_snap(read(sv.rho_s), task.rho_s_lo, task.rho_s_hi),
        t_device=val(sv.t, "device") * ts,
        t_upload=val(sv.t, "upload") * ts,
        t_server=val(sv.t, "server") * ts,
        e_device=val(sv.e, "device") * es,
        e_upload=val(sv.e, "upload") * es,
        e_server=val(sv.e, "server") * es,
        **extra,
    )


class ExactProgram:
    """One compiled convex program; `solve(task)` only sets parameter values."""

    def __init__(self, structure: Structure) -> None:
        self.structure = st = structure
        p: dict[str, cp.Parameter] = {}
        self.params = p
        make = dict_maker(p)
        sv = self.stages = build_stages(st, make)
        self.rho, self.rho_s, self.t, self.e = sv.rho, sv.rho_s, sv.t, sv.e
        cons, total_t, total_e = sv.cons, sv.total_t, sv.total_e
        if st.mode != "min_latency" and sv.t:
            cons.append(total_t <= 1.0)
        if st.mode != "min_energy" and sv.e:
            cons.append(total_e <= 1.0)
        objective = self._objective(make, sv)
        t0 = time.perf_counter()
        self.problem = cp.Problem(objective, cons)
        if not self.problem.is_dpp():
            raise AssertionError(f"exact program is not DPP: {structure}")
        self.conic = CompiledConic(self.problem, [sv.rho, sv.rho_s, *sv.t.values(), *sv.e.values()])
        self.pvals: dict[int, Any] = {}  # parameter id -> value (see `CompiledConic.data`)
        self.build_time_s = time.perf_counter() - t0
        self.solves = 0

    def _objective(self, make: ParamMaker, sv: StageVars) -> cp.Minimize | cp.Maximize:
        st, total_t, total_e = self.structure, sv.total_t, sv.total_e
        if st.mode == "min_latency":
            return cp.Minimize(total_t)
        if st.mode == "min_energy":
            return cp.Minimize(total_e)
        kept = kept_expr(make, sv)
        if st.pieces_device or st.pieces_server:
            # Tiny terms only break ties where a fit is flat: keep more parameters, then use less of
            # both budgets, so loose budgets do not give an arbitrary interior point (as for the bound).
            return cp.Minimize(cp.sum(cp.hstack(measured_terms(st, make, sv))) - 1e-7 * kept
                               + 1e-7 * (total_t + total_e))
        # Among plans of equal quality (e.g. every ratio at 1 under loose budgets) prefer the
        # one that uses less of both budgets, so the plan is not an arbitrary interior point.
        return cp.Maximize(kept - TIE_BREAK * (total_t + total_e))

    def _set(self, task: SplitTask) -> tuple[float, float, float]:
        """Write the task's numbers into the parameters; returns (T scale, E scale, distortion scale)."""
        values, ts, es = stage_values(self.structure, task)
        dscale = distortion_scale(task)
        if self.structure.mode == "quality":
            values.update(objective_values(self.structure, task, dscale))
        for name, value in values.items():
            self.pvals[self.params[name].id] = value
        return ts, es, dscale

    def solve(self, task: SplitTask) -> RawSolution:
        if self.structure.mode != "min_latency" and task.stage_budget_s <= 0.0:
            return RawSolution("infeasible", message="the latency budget does not cover the measured fixed cost")
        ts, es, _ = self._set(task)
        res = self.conic.solve_retrying(self.pvals, RETRIES)
        elapsed = res.solve_time_s
        if res.status == "error":
            logger.warning("Clarabel failed on split %s: %s", task.model.split, res.message)
            return RawSolution("error", solve_time_s=elapsed, message=res.message)
        self.solves += 1
        if res.status == "infeasible":
            return RawSolution("infeasible", solve_time_s=elapsed)
        if res.inaccurate:
            logger.info("split %s solved inaccurately", task.model.split)

        value = math.nan
        if self.structure.mode == "min_latency":
            value = res.value * ts + task.model.t_fixed
        elif self.structure.mode == "min_energy":
            value = res.value * es

        def read(var: cp.Variable) -> float:
            return self.conic.value(res, var)

        return raw_solution(self.stages, task, ts, es, read, value=value, solve_time_s=elapsed)


def recover_knobs(task: SplitTask, raw: RawSolution) -> Knobs:
    """Map stage times back to the knobs: f = rho N/(c t1), p = (2^(theta/(B tU)) - 1)/a, clipped to the caps."""
    m = task.model
    freqs: list[float] = []
    for present, pin, ratio, flops, proc, t in (
        (m.has_device, task.freq_device_hz, raw.rho, m.device_flops, m.device, raw.t_device),
        (m.has_server, task.freq_server_hz, raw.rho_s, m.server_flops, m.server, raw.t_server),
    ):
        if not present or ratio * flops <= 0.0:
            freqs.append(0.0)  # nothing to run: the processor idles
        elif pin is not None:
            freqs.append(pin)
        elif t <= 0.0:
            freqs.append(proc.f_max_hz)
        else:
            freqs.append(min(max(ratio * flops / (proc.flops_per_cycle * t), proc.f_min_hz), proc.f_max_hz))
    power = 0.0
    if m.has_upload:
        if task.power_w is not None:
            power = task.power_w
        elif raw.t_upload <= m.link.time_s(m.payload_bits, m.link.p_max_w):
            power = m.link.p_max_w
        else:
            power = min(m.link.power_for_time(m.payload_bits, raw.t_upload), m.link.p_max_w)
    return Knobs(raw.rho, raw.rho_s, power, freqs[0], freqs[1])
