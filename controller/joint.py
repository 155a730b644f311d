"""K devices on one edge server with every split fixed: one conic program.

Each device k keeps its own P1 cones (`controller.cones`), in units of its own
T0_k and E0_k, and its own budget rows t_k <= 1, e_k <= 1. Two linear rows couple
the devices through the shared server:

    sum_k lambda_k T0_k t2_k <= u_max      (server compute, each part at its planned f~_k)
    sum_k lambda_k T0_k tU_k <= u_max      (TDMA uplink airtime at the full bandwidth B)

Every device's structure has all three stages, so the compiled program does not
change with the split: a split without a device part has zero coefficients there.
One `JointProgram` per `JointStructure` is compiled with `cp.Parameter`s; the
split search only writes values, and each solve goes to Clarabel directly
(`controller.conic`), reading back only the variables and duals used here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cvxpy as cp
import numpy as np

from controller.cones import (
    ParamMaker,
    Values,
    build_stages,
    distortion_scale,
    kept_expr,
    measured_terms,
    objective_values,
    stage_values,
)
from controller.conic import RETRIES, CompiledConic, ConicResult
from controller.exact import TIE_BREAK, RawSolution, Structure, raw_solution
from controller.system_model import SplitTask

logger = logging.getLogger(__name__)

Fairness = Literal["sum", "max-min"]
# quality: the plan; load: least max(server, uplink) utilisation (phase 1); priced: the coupling rows
# moved into the objective at given prices, which separates the devices (the split search's bound).
JointMode = Literal["quality", "load", "priced"]


def pricing_mode(fairness: Fairness) -> JointMode:
    """The mode of the program that prices a group's splits ("sum": the quality program itself)."""
    return "quality" if fairness == "sum" else "priced"

# Weight of the sum of every device's term beside the worst device's term in "max-min": the
# secondary objective only chooses among plans with the same (to ~1e-4) worst device.
FAIR_EPS = 1e-4
MEASURED_TIE = 1e-7


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
    """One joint solve in SI units, with the optimum and the prices of the coupling rows.

    `value` is the program's optimum as a minimisation (a maximised objective is negated), in the
    program's units. `coefs`, `ties` and `prices` define the separable Lagrangian at this solution:
    device k's objective term scaled by coefs[k] with tie-break weight ties[k], plus prices[0] per unit of
    server load and prices[1] per unit of uplink load (all empty or zero for the load mode).
    """

    status: str  # "optimal" | "infeasible" | "error"
    devices: tuple[RawSolution, ...] = ()
    value: float = float("inf")
    server_load: float = float("nan")
    uplink_load: float = float("nan")
    loads: tuple[tuple[float, float], ...] = ()  # per device (server, uplink)
    coefs: tuple[float, ...] = ()
    ties: tuple[float, ...] = ()
    prices: tuple[float, float] = (0.0, 0.0)
    solve_time_s: float = 0.0
    message: str | None = None


class JointProgram:
    """One compiled joint program; `solve(...)` only sets parameter values."""

    def __init__(self, structure: JointStructure) -> None:
        self.structure = js = structure
        k = len(js.devices)
        # Scalars of every device share one vector parameter per name; shaped ones (fits) stay per device.
        self.vectors: dict[str, cp.Parameter] = {}
        self.shaped: list[dict[str, cp.Parameter]] = [{} for _ in range(k)]
        self.makers = [self._maker(i) for i in range(k)]
        self.stages = [build_stages(st, mk, f"_{i}") for i, (st, mk) in enumerate(zip(js.devices, self.makers,
                                                                                           strict=True))]
        self.rate_t = cp.Parameter(k, nonneg=True, name="rate_t0")
        self.u_max = cp.Parameter(nonneg=True, name="u_max")
        self.t_server = cp.hstack([sv.t["server"] for sv in self.stages])
        self.t_upload = cp.hstack([sv.t["upload"] for sv in self.stages])
        self.coupling: list[cp.Constraint] = []
        self.fair_rows: list[cp.Constraint] = []
        self.terms: list[cp.Expression] = []
        self.dist_vars: list[list[cp.Variable]] = [[] for _ in range(k)]  # measured: each device's epigraph variables
        self.ties: list[float] = []
        self.values: list[Values] = []
        self.pvals: dict[int, Any] = {}  # parameter id -> value, for the next solve (see `CompiledConic.data`)
        self.extra_vars: list[cp.Variable] = []
        cons: list[cp.Constraint] = []
        objective = self._objective(cons)  # adds the coupling rows here and the fits' rows to each stage's list
        for sv in self.stages:
            cons += [*sv.cons, sv.total_t <= 1.0, sv.total_e <= 1.0]
        t0 = time.perf_counter()
        self.problem = cp.Problem(objective, cons)
        if not self.problem.is_dpp():
            raise AssertionError(f"joint program is not DPP: {structure}")
        read = [v for sv in self.stages for v in (sv.rho, sv.rho_s, *sv.t.values(), *sv.e.values())]
        read += [v for vs in self.dist_vars for v in vs] + self.extra_vars
        self.conic = CompiledConic(self.problem, read, self.coupling + self.fair_rows)
        self.build_time_s = time.perf_counter() - t0
        self.solves = 0

    def _maker(self, i: int) -> ParamMaker:
        k = len(self.structure.devices)

        def make(name: str, shape: tuple[int, ...] = (), nonneg: bool = True) -> cp.Expression:
            if shape:
                self.shaped[i][name] = cp.Parameter(shape, nonneg=nonneg, name=f"{name}_{i}")
                return self.shaped[i][name]
            if name not in self.vectors:
                self.vectors[name] = cp.Parameter(k, nonneg=nonneg, name=name)
            return self.vectors[name][i]

        return make

    @property
    def priceable(self) -> bool:
        """`priced_terms` works on this program: a priced one, or a "sum" quality one (one compile, not two).

        The "sum" quality program carries the price terms too: zero for a plan; for the bound, its
        coupling rows are emptied (rates 0) and the prices set.
        """
        js = self.structure
        return js.mode == "priced" or (js.mode == "quality" and js.fairness == "sum")

    def _objective(self, cons: list[cp.Constraint]) -> cp.Minimize:
        """Every mode as a minimisation of per-device terms (see `JointRaw.value`)."""
        js = self.structure
        k = len(js.devices)
        server_load = self.rate_t @ self.t_server
        uplink_load = self.rate_t @ self.t_upload
        if js.mode == "load":
            worst = cp.Variable(name="worst_load")
            self.extra_vars.append(worst)
            cons += [server_load <= worst, uplink_load <= worst]
            return cp.Minimize(worst)
        kept = [kept_expr(mk, sv) for mk, sv in zip(self.makers, self.stages, strict=True)]
        self.tie = cp.Parameter(k, nonneg=True, name="tie_break")
        if js.measured:
            self.dist_vars = [measured_terms(st, mk, sv, f"_{i}")
                              for i, (st, mk, sv) in enumerate(zip(js.devices, self.makers, self.stages, strict=True))]
            dist = [cp.sum(cp.hstack(vs or [cp.Constant(0.0)])) for vs in self.dist_vars]
            # tie x kept fraction, with the tie folded into the weights' values (a product of parameters is not DPP)
            tied = [mk("tw_device", (), True) * sv.rho + mk("tw_server", (), True) * sv.rho_s
                    for mk, sv in zip(self.makers, self.stages, strict=True)]
            self.terms = [d - x for d, x in zip(dist, tied, strict=True)]
            quality = dist
        else:
            # Among plans of equal quality prefer the one that uses less of each device's budgets.
            self.terms = [self.tie[i] * (sv.total_t + sv.total_e) - x
                          for i, (sv, x) in enumerate(zip(self.stages, kept, strict=True))]
            quality = [-x for x in kept]
        total = cp.sum(cp.hstack(self.terms))
        if self.priceable:
            self.cost = cp.Parameter((2, k), nonneg=True, name="price_times_rate_t0")
            total = (total + cp.sum(cp.multiply(self.cost[0], self.t_server))
                     + cp.sum(cp.multiply(self.cost[1], self.t_upload)))
        if js.mode == "priced":
            return cp.Minimize(total)
        self.coupling = [server_load <= self.u_max, uplink_load <= self.u_max]
        cons += self.coupling
        if js.fairness == "sum":
            return cp.Minimize(total)
        worst = cp.Variable(name="worst_device")
        self.extra_vars.append(worst)
        self.fair_rows = [q <= worst for q in quality]
        cons += self.fair_rows
        return cp.Minimize(worst + FAIR_EPS / k * total)

    def _set(self, tasks: Sequence[SplitTask], rates: Sequence[float], coefs: Sequence[float], u_max: float,
             ties: Sequence[float] | None = None, dscale: float | None = None) -> list[tuple[float, float]]:
        js = self.structure
        per_device: list[Values] = []
        scales = []
        for st, task in zip(js.devices, tasks, strict=True):
            values, ts, es = stage_values(st, task)
            per_device.append(values)
            scales.append((ts, es))
        if js.mode != "load":
            if dscale is None:
                dscale = max(distortion_scale(t) for t in tasks) if js.measured else 1.0
            self.ties = list(ties) if ties is not None else [MEASURED_TIE if js.measured else TIE_BREAK] * len(tasks)
            for st, values, task, c, tie in zip(js.devices, per_device, tasks, coefs, self.ties, strict=True):
                values.update(objective_values(st, task, dscale, c))
                values["tw_device"], values["tw_server"] = tie * values["w_device"], tie * values["w_server"]
            self.pvals[self.tie.id] = np.array(self.ties)
        self.values = per_device
        for name, vec in self.vectors.items():
            self.pvals[vec.id] = np.array([float(v.get(name, 0.0)) for v in per_device])
        for shaped, values in zip(self.shaped, per_device, strict=True):
            for name, param in shaped.items():
                self.pvals[param.id] = values[name]
        self.pvals[self.rate_t.id] = np.array([r * ts for r, (ts, _) in zip(rates, scales, strict=True)])
        self.pvals[self.u_max.id] = u_max
        return scales

    def coefs(self, weights: Sequence[float]) -> list[float]:
        """Each device's objective scale: w_k / max w in "sum", 1 in "max-min" (weights unused there)."""
        if self.structure.fairness == "sum":
            return [w / max(weights) for w in weights]
        return [1.0] * len(weights)

    def _run(self) -> ConicResult:
        res = self.conic.solve_retrying(self.pvals, RETRIES)
        if res.status == "error":
            logger.warning("Clarabel failed on a joint problem of %d devices: %s", len(self.stages), res.message)
            return res
        self.solves += 1
        return res

    def solve(self, tasks: Sequence[SplitTask], rates: Sequence[float], weights: Sequence[float], u_max: float,
              dscale: float | None = None) -> JointRaw:
        """Solve with each device's split fixed by its task (padded to the structure, see `uniform_structure`).

        `dscale`: the unit of measured distortions; give the same one for every combination compared.
        """
        if self.structure.mode == "priced":
            raise ValueError("a priced program is solved with `priced_terms`")
        coefs = self.coefs(weights)
        scales = self._set(tasks, rates, coefs, u_max, dscale=dscale)
        if self.priceable:
            self.pvals[self.cost.id] = np.zeros((2, len(tasks)))
        res = self._run()
        elapsed = res.solve_time_s
        if res.status != "optimal":
            return JointRaw(res.status, solve_time_s=elapsed, message=res.message)

        def read(var: cp.Variable) -> float:
            return self.conic.value(res, var)

        raws = tuple(raw_solution(sv, t, ts, es, read)
                     for sv, t, (ts, es) in zip(self.stages, tasks, scales, strict=True))
        loads = tuple((r * raw.t_server, r * raw.t_upload) for r, raw in zip(rates, raws, strict=True))
        duals = [max(self.conic.dual(res, c), 0.0) for c in self.coupling] or [0.0, 0.0]
        ties = [] if self.structure.mode == "load" else self.ties
        if self.fair_rows:
            # The Lagrangian weighs device k's quality by its row's price plus FAIR_EPS/K, and its
            # tie-break term (not scaled by the weight in the bound form) by FAIR_EPS/K alone.
            small = FAIR_EPS / len(tasks)
            coefs = [max(self.conic.dual(res, row), 0.0) + small for row in self.fair_rows]
            ties = [small * t / c if self.structure.measured else small * t for t, c in zip(ties, coefs, strict=True)]
        return JointRaw(
            "optimal", raws, value=res.value,
            server_load=sum(a for a, _ in loads), uplink_load=sum(b for _, b in loads), loads=loads,
            coefs=tuple(coefs), ties=tuple(ties), prices=(duals[0], duals[1]), solve_time_s=elapsed,
        )

    def priced_terms(self, tasks: Sequence[SplitTask], rates: Sequence[float], at: JointRaw,
                     dscale: float | None = None) -> list[float] | None:
        """Each device's least Lagrangian term at the coefficients and prices of `at` (the devices separate)."""
        if not self.priceable:
            raise ValueError(f"no price terms in a {self.structure.fairness} {self.structure.mode} program")
        prices = at.prices
        scales = self._set(tasks, rates, at.coefs, 1.0, at.ties, dscale)
        rt = [r * ts for r, (ts, _) in zip(rates, scales, strict=True)]
        self.pvals[self.rate_t.id] = np.zeros(len(tasks))  # no coupling rows (0 <= u_max) in a quality program
        self.pvals[self.cost.id] = np.array([[prices[0] * x for x in rt], [prices[1] * x for x in rt]])
        res = self._run()
        if res.status != "optimal":
            return None
        out = []
        for i, sv in enumerate(self.stages):
            t2, tu = self.conic.value(res, sv.t["server"]), self.conic.value(res, sv.t["upload"])
            out.append(self._term(res, i) + prices[0] * rt[i] * t2 + prices[1] * rt[i] * tu)
        return out

    def _term(self, res: ConicResult, i: int) -> float:
        """Device i's objective term (`self.terms[i]`) at a solution, from the values set in `_set`."""
        sv, v = self.stages[i], self.values[i]

        def read(var: cp.Variable) -> float:
            return self.conic.value(res, var)

        if self.structure.measured:
            dist = sum(read(z) for z in self.dist_vars[i])
            return dist - (v["tw_device"] * read(sv.rho) + v["tw_server"] * read(sv.rho_s))
        used = sum(read(x) for x in (*sv.t.values(), *sv.e.values()))
        return self.ties[i] * used - (v["w_device"] * read(sv.rho) + v["w_server"] * read(sv.rho_s))
