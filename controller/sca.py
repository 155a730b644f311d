"""The paper's SCA algorithm for P1 (problems P2 and P3.k, eqs. 45-50).

P2 introduces rho' (rho <= 1/rho') so the time constraint N/(rho' f c) + theta/r(p)
+ ... <= T0 is convex; each P3.k then replaces the concave upload energy
p theta / r(p) by its tangent at p^(k) (eq. 46-47) and rho <= 1/rho' by the
tangent of 1/rho' at rho'^(k) (eqs. 48-49). Every P3.k solution is feasible
for P1, and the objective never gets worse from one iteration to the next.

The paper gives no feasible start. `start="phase1"` finds one: the ratios are
set to their floors (at least START_RATIO_MIN) and a convex feasibility
problem in the stage times/energies picks clocks and power that meet both
budgets. `start="natural"` uses the paper's implied start p = P_max,
rho' = 1, whose first subproblem is often infeasible (reported as an error).

Units inside the program: clocks in GHz, power as the received SNR a p, times in
T0 and energies in E0.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Literal

import cvxpy as cp
import numpy as np

from controller.exact import ExactProgram, Structure, recover_knobs, scalar
from controller.system_model import LN2, Knobs, SplitTask

logger = logging.getLogger(__name__)

Start = Literal["phase1", "natural"]
RHO_PRIME_MAX = 1e8
START_RATIO_MIN = 1e-4  # phase 1 starts no ratio below this, so few doublings of rho' are needed
GHZ = 1e9


@dataclass
class ScaResult:
    status: str  # "optimal" | "infeasible" | "error"
    knobs: Knobs | None = None
    iterations: int = 0
    trace: list[float] = field(default_factory=list)
    solve_time_s: float = 0.0
    message: str | None = None


def _upload_energy_tangent(task: SplitTask, p_k: float) -> tuple[float, float]:
    """h(p) = p theta / r(p) at p_k: value and slope u(p_k) (eq. 47)."""
    m = task.model
    link, theta = m.link, m.payload_bits
    r = link.rate_bps(p_k)
    g, b, n0 = link.gain, link.bandwidth_hz, link.noise_psd
    u = theta / r - p_k * theta * g / (r * r / b * (b * n0 + g * p_k) * LN2)
    return p_k * theta / r, u


class ScaProgram:
    """P3.k compiled once per structure; the local point and bounds are parameters."""

    def __init__(self, structure: Structure) -> None:
        st = self.structure = structure
        p: dict[str, cp.Parameter] = {}
        self.params = p
        self.rho = cp.Variable(name="rho")
        self.rho_s = cp.Variable(name="rho_s")
        for key in ("rho_lo", "rho_hi", "rho_s_lo", "rho_s_hi"):
            p[key] = cp.Parameter(nonneg=True, name=key)
        cons: list[cp.Constraint] = [
            self.rho >= p["rho_lo"], self.rho <= p["rho_hi"],
            self.rho_s >= p["rho_s_lo"], self.rho_s <= p["rho_s_hi"],
        ]
        times: list[cp.Expression] = []
        energies: list[cp.Expression] = []
        self.freq: dict[str, cp.Variable] = {}
        self.rho_prime: dict[str, cp.Variable] = {}
        for side, present, ratio in (("device", st.has_device, self.rho), ("server", st.has_server, self.rho_s)):
            if not present:
                continue
            # rho' is carried relative to the local point, v = rho'/rho'^(k), so the variable stays near 1
            # however large rho' grows (a side pruned towards zero doubles rho' every iteration).
            f = self.freq[side] = cp.Variable(pos=True, name=f"f_{side}")
            v = self.rho_prime[side] = cp.Variable(pos=True, name=f"v_{side}")
            for key in ("c_time", "c_energy", "f_lo", "f_hi", "inv_k", "v_lo", "v_hi"):
                p[f"{key}_{side}"] = cp.Parameter(nonneg=True, name=f"{key}_{side}")
            cons += [
                f >= p[f"f_lo_{side}"], f <= p[f"f_hi_{side}"], v >= p[f"v_lo_{side}"], v <= p[f"v_hi_{side}"],
                ratio <= 2 * p[f"inv_k_{side}"] - p[f"inv_k_{side}"] * v,  # eqs. 48-49 with rho' = rho'^(k) v
            ]
            times.append(p[f"c_time_{side}"] * cp.inv_prod(cp.hstack([v, f])))
            energies.append(p[f"c_energy_{side}"] * cp.quad_over_lin(f, v))
        if st.has_upload:
            # The power enters as the received SNR a p, so no parameter sits inside the log (DPP).
            self.snr = cp.Variable(pos=True, name="snr")
            for key in ("c_upload", "snr_lo", "snr_hi", "z0", "z1"):
                p[key] = cp.Parameter(nonneg=True, name=key)
            cons += [self.snr >= p["snr_lo"], self.snr <= p["snr_hi"]]
            times.append(p["c_upload"] * cp.inv_pos(cp.log(1 + self.snr)))
            energies.append(p["z0"] + p["z1"] * self.snr)  # zeta^(k)(p), eq. 46
        if times:
            cons += [cp.sum(cp.hstack(times)) <= 1.0, cp.sum(cp.hstack(energies)) <= 1.0]
        p["w_device"] = cp.Parameter(nonneg=True, name="w_device")
        p["w_server"] = cp.Parameter(nonneg=True, name="w_server")
        kept = p["w_device"] * self.rho + p["w_server"] * self.rho_s
        objective: cp.Minimize | cp.Maximize = cp.Maximize(kept)
        if st.pieces_device or st.pieces_server:
            terms: list[cp.Expression] = []
            sides = (("device", st.pieces_device, self.rho), ("server", st.pieces_server, self.rho_s))
            for side, pieces, ratio in sides:
                if pieces:
                    z = cp.Variable(name=f"d_{side}")
                    p[f"icept_{side}"] = cp.Parameter(pieces, name=f"icept_{side}")
                    p[f"negslope_{side}"] = cp.Parameter(pieces, nonneg=True, name=f"negslope_{side}")
                    cons.append(z >= p[f"icept_{side}"] - p[f"negslope_{side}"] * ratio)
                    terms.append(z)
            objective = cp.Minimize(cp.sum(cp.hstack(terms)) - 1e-7 * kept)
        self.problem = cp.Problem(objective, cons)
        if not self.problem.is_dpp():
            raise AssertionError(f"SCA subproblem is not DPP: {structure}")

    def set_task(self, task: SplitTask) -> None:
        p, m = self.params, task.model
        self._c_time: dict[str, float] = {}
        self._c_energy: dict[str, float] = {}
        ts, es = max(task.stage_budget_s, 1e-12), task.energy_j  # the stages' share of T0 (T0 - T_fix)
        p["rho_lo"].value, p["rho_hi"].value = task.rho_lo, task.rho_hi
        p["rho_s_lo"].value, p["rho_s_hi"].value = task.rho_s_lo, task.rho_s_hi
        for side, flops, proc, pin in (
            ("device", m.device_flops, m.device, task.freq_device_hz),
            ("server", m.server_flops, m.server, task.freq_server_hz),
        ):
            if side not in self.freq:
                continue
            self._c_time[side] = flops / (proc.flops_per_cycle * GHZ * ts)
            self._c_energy[side] = proc.pue * proc.power_coeff * flops * GHZ**2 / (proc.flops_per_cycle * es)
            lo, hi = (pin, pin) if pin is not None else (max(proc.f_max_hz * 1e-9, proc.f_min_hz), proc.f_max_hz)
            p[f"f_lo_{side}"].value, p[f"f_hi_{side}"].value = lo / GHZ, hi / GHZ
        if m.has_upload:
            link = m.link
            p["c_upload"].value = m.payload_bits * LN2 / (link.bandwidth_hz * ts)
            lo, hi = (task.power_w, task.power_w) if task.power_w is not None else (link.p_max_w * 1e-9, link.p_max_w)
            p["snr_lo"].value, p["snr_hi"].value = lo * link.snr_per_watt, hi * link.snr_per_watt
        n = m.device_params + m.server_params
        p["w_device"].value, p["w_server"].value = m.device_params / n, m.server_params / n
        fits = [f for f in (task.fit_device, task.fit_server) if f is not None]
        dscale = max(max(abs(a) for a in f.intercepts) for f in fits) or 1.0 if fits else 1.0
        for side, fit in (("device", task.fit_device), ("server", task.fit_server)):
            if f"icept_{side}" in p and fit is not None:
                p[f"icept_{side}"].value = np.asarray(fit.intercepts) / dscale
                p[f"negslope_{side}"].value = -np.asarray(fit.slopes) / dscale

    def set_point(self, task: SplitTask, p_k: float, rho_prime_k: dict[str, float]) -> None:
        """Linearise at (p^(k), rho'^(k), rho~'^(k))."""
        p = self.params
        self._rp_k = dict(rho_prime_k)
        for side, rp in rho_prime_k.items():
            if side in self.rho_prime:
                p[f"inv_k_{side}"].value = 1.0 / rp
                p[f"v_lo_{side}"].value = 1.0 / rp
                p[f"v_hi_{side}"].value = RHO_PRIME_MAX / rp
                p[f"c_time_{side}"].value = self._c_time[side] / rp
                p[f"c_energy_{side}"].value = self._c_energy[side] / rp
        if task.model.has_upload:
            h, u = _upload_energy_tangent(task, p_k)
            p["z0"].value = max(h - u * p_k, 0.0) / task.energy_j
            p["z1"].value = max(u, 0.0) / (task.model.link.snr_per_watt * task.energy_j)

    def rho_prime_values(self) -> dict[str, float]:
        return {side: self._rp_k[side] * scalar(v) for side, v in self.rho_prime.items()}

    def knobs(self, task: SplitTask) -> Knobs:
        m = task.model
        rho = min(max(scalar(self.rho), task.rho_lo), task.rho_hi)
        rho_s = min(max(scalar(self.rho_s), task.rho_s_lo), task.rho_s_hi)
        freq = {side: scalar(v) * GHZ for side, v in self.freq.items()}
        power = scalar(self.snr) / m.link.snr_per_watt if m.has_upload else 0.0
        return Knobs(
            rho, rho_s, min(power, m.link.p_max_w),
            min(freq.get("device", 0.0), m.device.f_max_hz) if rho > 0 else 0.0,
            min(freq.get("server", 0.0), m.server.f_max_hz) if rho_s > 0 else 0.0,
        )


def phase1_start(task: SplitTask, exact: ExactProgram) -> Knobs | None:
    """A feasible P1 point with the ratios at their floors (at least START_RATIO_MIN), or None."""
    def floor(lo: float, hi: float) -> float:
        return min(max(lo, START_RATIO_MIN), hi)

    rho, rho_s = floor(task.rho_lo, task.rho_hi), floor(task.rho_s_lo, task.rho_s_hi)
    fixed = SplitTask(
        task.model, task.latency_s, task.energy_j, rho, rho, rho_s, rho_s,
        task.power_w, task.freq_device_hz, task.freq_server_hz,
    )
    raw = exact.solve(fixed)
    return recover_knobs(fixed, raw) if raw.status == "optimal" else None


def _out_of_time(deadline: float | None, k: int, result: ScaResult) -> bool:
    """Past the problem's time cap: keep iteration k - 1 (none at k = 1: an error)."""
    if deadline is None or time.perf_counter() <= deadline:
        return False
    result.message = f"stopped at the time limit after {k - 1} iterations"
    if k == 1:
        result.status = "error"
    return True


def run_sca(
    task: SplitTask,
    program: ScaProgram,
    start: Knobs | None,
    *,
    natural: bool = False,
    max_iter: int = 150,
    tol: float = 1e-7,
    deadline: float | None = None,
) -> ScaResult:
    """Iterate P3.k until its (normalised, order-one) objective improves by less than tol."""
    t0 = time.perf_counter()
    m = task.model
    if natural:
        p_k = task.power_w if task.power_w is not None else m.link.p_max_w
        rp_k = {"device": 1.0, "server": 1.0}
    elif start is None:
        return ScaResult("infeasible", solve_time_s=time.perf_counter() - t0, message="phase 1 found no feasible start")
    else:
        p_k = start.power_w if start.power_w > 0 else m.link.p_max_w
        rp_k = {"device": 1.0 / max(start.rho, START_RATIO_MIN), "server": 1.0 / max(start.rho_s, START_RATIO_MIN)}
    program.set_task(task)
    result = ScaResult("optimal")
    prev = math.inf
    for k in range(1, max_iter + 1):
        if _out_of_time(deadline, k, result):
            break
        program.set_point(task, p_k, rp_k)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # inaccurate iterates are judged by their trace
                program.problem.solve(solver=cp.CLARABEL)
            status = program.problem.status
        except cp.error.SolverError as exc:
            status = f"solver error: {exc}"
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            if k == 1:
                which = "the natural start (p = P_max, rho' = 1)" if natural else "the phase-1 start"
                result.status, result.message = "error", f"first SCA subproblem from {which} is {status}"
            else:
                result.message = f"iteration {k} ended with status {status}; kept iteration {k - 1}"
            break
        result.knobs = program.knobs(task)
        result.iterations = k
        value = task.objective(result.knobs.rho, result.knobs.rho_s)
        result.trace.append(value)
        # Stop on the paper's rule: the objective P3.k optimises no longer improves by tol.
        score = float(program.problem.value) * (-1.0 if program.problem.objective.NAME == "maximize" else 1.0)
        if m.has_upload:
            p_k = max(result.knobs.power_w, m.link.p_max_w * 1e-9)
        rp_k = program.rho_prime_values()
        if prev - score <= tol:
            break
        prev = score
    else:
        result.message = f"stopped after {max_iter} iterations"
    result.solve_time_s = time.perf_counter() - t0
    return result
