"""K devices on one edge server with every split fixed: one conic program.

Each device k keeps its own P1 cones (`controller.cones`), in units of its own
T0_k and E0_k, and its own budget rows t_k <= 1, e_k <= 1. Two linear rows couple
the devices through the shared server:

    sum_k lambda_k T0_k t2_k <= u_max      (server compute, each part at its planned f~_k)
    sum_k lambda_k T0_k tU_k <= u_max      (TDMA uplink airtime at the full bandwidth B)

Every device's structure has all three stages, so the compiled program does not
change with the split: a split without a device part has zero coefficients there.
One `JointProgram` per `JointStructure` is compiled with `cp.Parameter`s; the
split search only writes values.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cvxpy as cp
import numpy as np

from controller.cones import (
    build_stages,
    distortion_scale,
    kept_expr,
    measured_terms,
    set_objective_params,
    set_stage_params,
)
from controller.exact import TIE_BREAK, RawSolution, Structure, raw_solution
from controller.system_model import SplitTask

logger = logging.getLogger(__name__)

Fairness = Literal["sum", "max-min"]
JointMode = Literal["quality", "load"]
# Weight of the sum of every device's term beside the worst device's term in "max-min": the
# secondary objective only chooses among plans with the same (to ~1e-4) worst device.
FAIR_EPS = 1e-4


@dataclass(frozen=True)
class JointStructure:
    """What distinguishes one compiled joint program: per-device structures, fairness, mode."""

    devices: tuple[Structure, ...]
    fairness: Fairness = "sum"
    mode: JointMode = "quality"

    @property
    def measured(self) -> bool:
        return any(st.pieces_device or st.pieces_server for st in self.devices)


@dataclass(frozen=True)
class JointRaw:
    """One joint solve: status, per-device raw solutions in SI units, shared loads, prices."""

    status: str  # "optimal" | "infeasible" | "error"
    devices: tuple[RawSolution, ...] = ()
    server_load: float = float("nan")
    uplink_load: float = float("nan")
    prices: tuple[float, float] = (0.0, 0.0)  # duals of the server and uplink rows (objective per unit load)
    solve_time_s: float = 0.0
    message: str | None = None
    loads: tuple[tuple[float, float], ...] = field(default=())  # per device (server, uplink)


class JointProgram:
    """One compiled joint program; `solve(...)` only sets parameter values."""

    def __init__(self, structure: JointStructure) -> None:
        self.structure = js = structure
        k = len(js.devices)
        self.params: list[dict[str, cp.Parameter]] = [{} for _ in range(k)]
        pairs = enumerate(zip(js.devices, self.params, strict=True))
        self.stages = [build_stages(st, p, f"_{i}") for i, (st, p) in pairs]
        cons: list[cp.Constraint] = []
        for sv in self.stages:
            cons += sv.cons
            cons += [sv.total_t <= 1.0, sv.total_e <= 1.0]
        self.rate_t = cp.Parameter(k, nonneg=True, name="rate_t0")
        self.u_max = cp.Parameter(nonneg=True, name="u_max")
        self.server_load = self.rate_t @ cp.hstack([sv.t["server"] for sv in self.stages])
        self.uplink_load = self.rate_t @ cp.hstack([sv.t["upload"] for sv in self.stages])
        objective: cp.Minimize | cp.Maximize
        if js.mode == "load":
            worst = cp.Variable(name="worst_load")
            cons += [self.server_load <= worst, self.uplink_load <= worst]
            objective = cp.Minimize(worst)
            self.coupling: list[cp.Constraint] = []
        else:
            self.coupling = [self.server_load <= self.u_max, self.uplink_load <= self.u_max]
            cons += self.coupling
            objective = self._quality(cons)
        t0 = time.perf_counter()
        self.problem = cp.Problem(objective, cons)
        if not self.problem.is_dpp():
            raise AssertionError(f"joint program is not DPP: {structure}")
        self.build_time_s = time.perf_counter() - t0
        self.solves = 0

    def _quality(self, cons: list[cp.Constraint]) -> cp.Minimize | cp.Maximize:
        """Sum or max-min of the per-device terms: kept fraction (bound) or fitted distortion (measured)."""
        js = self.structure
        kept = [kept_expr(p, sv, f"_{i}") for i, (p, sv) in enumerate(zip(self.params, self.stages, strict=True))]
        usage = cp.sum(cp.hstack([sv.total_t + sv.total_e for sv in self.stages]))
        k = len(js.devices)
        if js.measured:
            dist = [
                cp.sum(cp.hstack(measured_terms(st, p, sv, f"_{i}") or [cp.Constant(0.0)]))
                for i, (st, p, sv) in enumerate(zip(js.devices, self.params, self.stages, strict=True))
            ]
            total = cp.sum(cp.hstack(dist))
            tie = 1e-7 * cp.sum(cp.hstack(kept))
            if js.fairness == "sum":
                return cp.Minimize(total - tie)
            worst = cp.Variable(name="worst_distortion")
            cons += [d <= worst for d in dist]
            return cp.Minimize(worst + FAIR_EPS / k * total - tie)
        total = cp.sum(cp.hstack(kept))
        if js.fairness == "sum":
            return cp.Maximize(total - TIE_BREAK * usage)
        worst = cp.Variable(name="worst_kept")
        cons += [worst <= x for x in kept]
        return cp.Maximize(worst + FAIR_EPS / k * total - TIE_BREAK * usage)

    def _set(
        self, tasks: Sequence[SplitTask], rates: Sequence[float], weights: Sequence[float], u_max: float
    ) -> list[tuple[float, float]]:
        js = self.structure
        scales = [set_stage_params(st, p, t) for st, p, t in zip(js.devices, self.params, tasks, strict=True)]
        self.rate_t.value = np.array([r * ts for r, (ts, _) in zip(rates, scales, strict=True)])
        self.u_max.value = u_max
        if js.mode == "quality":
            dscale = max(distortion_scale(t) for t in tasks) if js.measured else 1.0
            wmax = max(weights)
            for p, t, w in zip(self.params, tasks, weights, strict=True):
                set_objective_params(p, t, dscale, w / wmax if js.fairness == "sum" else 1.0)
        return scales

    def solve(
        self, tasks: Sequence[SplitTask], rates: Sequence[float], weights: Sequence[float], u_max: float
    ) -> JointRaw:
        """Solve with each device's split fixed by its task (`SplitTask`, padded to the structure)."""
        if len(tasks) != len(self.structure.devices):
            raise ValueError("one task per device is needed")
        scales = self._set(tasks, rates, weights, u_max)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.problem.solve(solver=cp.CLARABEL)
        except cp.error.SolverError as exc:
            logger.warning("Clarabel failed on a joint problem of %d devices: %s", len(tasks), exc)
            return JointRaw("error", solve_time_s=time.perf_counter() - t0, message=str(exc))
        elapsed = time.perf_counter() - t0
        self.solves += 1
        status = self.problem.status
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            return JointRaw("infeasible", solve_time_s=elapsed)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return JointRaw("error", solve_time_s=elapsed, message=f"solver status {status}")
        raws = tuple(raw_solution(sv, t, ts, es) for sv, t, (ts, es) in zip(self.stages, tasks, scales, strict=True))
        loads = tuple((r * raw.t_server, r * raw.t_upload) for r, raw in zip(rates, raws, strict=True))
        prices = tuple(abs(float(c.dual_value)) if c.dual_value is not None else 0.0 for c in self.coupling)
        return JointRaw(
            "optimal", raws, server_load=sum(a for a, _ in loads), uplink_load=sum(b for _, b in loads),
            prices=(prices[0], prices[1]) if prices else (0.0, 0.0), solve_time_s=elapsed, loads=loads,
        )
