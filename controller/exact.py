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
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import cvxpy as cp
import numpy as np

from controller.system_model import LN2, Knobs, SplitTask

logger = logging.getLogger(__name__)

Mode = Literal["quality", "min_latency", "min_energy"]
# Lower bound on the scale of a budget, so a near-zero budget cannot produce
# parameters of 1e20 (the problem is then reported infeasible, as it is).
_BIG = 1e12
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


def _nonneg(name: str, shape: tuple[int, ...] = ()) -> cp.Parameter:
    return cp.Parameter(shape, nonneg=True, name=name)


class ExactProgram:
    """One compiled convex program; `solve(task)` only sets parameter values."""

    def __init__(self, structure: Structure) -> None:
        self.structure = st = structure
        p: dict[str, cp.Parameter] = {}
        self.params = p
        self.rho = cp.Variable(name="rho")
        self.rho_s = cp.Variable(name="rho_s")
        for key in ("rho_lo", "rho_hi", "rho_s_lo", "rho_s_hi"):
            p[key] = _nonneg(key)
        cons: list[cp.Constraint] = [
            self.rho >= p["rho_lo"], self.rho <= p["rho_hi"],
            self.rho_s >= p["rho_s_lo"], self.rho_s <= p["rho_s_hi"],
        ]
        self.t: dict[str, cp.Variable] = {}
        self.e: dict[str, cp.Variable] = {}
        if st.has_device:
            cons += self._compute_stage("device", st.pin_f_device, st.fmin_device, self.rho)
        if st.has_server:
            cons += self._compute_stage("server", st.pin_f_server, st.fmin_server, self.rho_s)
        if st.has_upload:
            cons += self._upload_stage(st.pin_power)
        times, energies = list(self.t.values()), list(self.e.values())
        total_t = cp.sum(cp.hstack(times)) if times else cp.Constant(0.0)
        total_e = cp.sum(cp.hstack(energies)) if energies else cp.Constant(0.0)
        if st.mode != "min_latency" and times:
            cons.append(total_t <= 1.0)
        if st.mode != "min_energy" and energies:
            cons.append(total_e <= 1.0)
        objective = self._objective(total_t, total_e, cons)
        t0 = time.perf_counter()
        self.problem = cp.Problem(objective, cons)
        if not self.problem.is_dpp():
            raise AssertionError(f"exact program is not DPP: {structure}")
        self.build_time_s = time.perf_counter() - t0
        self.solves = 0

    def _compute_stage(self, side: str, pinned: bool, fmin: bool, ratio: cp.Variable) -> list[cp.Constraint]:
        """Scaled time and energy of one side's compute: t >= a rho and (k rho)^3 <= e t^2 (a power cone),
        or both fixed by a pinned clock; with a clock floor f_min also t <= b rho."""
        p = self.params
        t = self.t[side] = cp.Variable(nonneg=True, name=f"t_{side}")
        e = self.e[side] = cp.Variable(nonneg=True, name=f"e_{side}")
        p[f"a_{side}"] = _nonneg(f"a_{side}")
        p[f"k_{side}"] = _nonneg(f"k_{side}")
        if pinned:
            return [t == p[f"a_{side}"] * ratio, e == p[f"k_{side}"] * ratio]
        cons = [
            p[f"a_{side}"] * ratio <= t,
            p[f"k_{side}"] * ratio <= cp.geo_mean(cp.hstack([e, t]), [1, 2]),
        ]
        if fmin:
            p[f"b_{side}"] = _nonneg(f"b_{side}")
            cons.append(t <= p[f"b_{side}"] * ratio)
        return cons

    def _upload_stage(self, pinned_power: bool) -> list[cp.Constraint]:
        """Scaled upload time and energy: fixed by a pinned power, else the exponential cone of e >= p(t) t."""
        p = self.params
        tu = self.t["upload"] = cp.Variable(nonneg=True, name="t_upload")
        eu = self.e["upload"] = cp.Variable(nonneg=True, name="e_upload")
        p["u_time"] = _nonneg("u_time")
        if pinned_power:
            p["u_energy"] = _nonneg("u_energy")
            return [tu == p["u_time"], eu == p["u_energy"]]
        p["kappa"] = _nonneg("kappa")
        p["a_energy"] = _nonneg("a_energy")
        x = cp.Variable(name="kappa_aux")
        return [tu >= p["u_time"], x == p["kappa"], cp.constraints.ExpCone(x, tu, p["a_energy"] * eu + tu)]

    def _objective(self, total_t: cp.Expression, total_e: cp.Expression,
                   cons: list[cp.Constraint]) -> cp.Minimize | cp.Maximize:
        st, p = self.structure, self.params
        if st.mode == "min_latency":
            return cp.Minimize(total_t)
        if st.mode == "min_energy":
            return cp.Minimize(total_e)
        p["w_device"] = _nonneg("w_device")
        p["w_server"] = _nonneg("w_server")
        kept = p["w_device"] * self.rho + p["w_server"] * self.rho_s
        if not (st.pieces_device or st.pieces_server):
            # Among plans of equal quality (e.g. every ratio at 1 under loose budgets) prefer the
            # one that uses less of both budgets, so the plan is not an arbitrary interior point.
            return cp.Maximize(kept - TIE_BREAK * (total_t + total_e))
        terms: list[cp.Expression] = []
        for side, pieces, ratio in (("device", st.pieces_device, self.rho), ("server", st.pieces_server, self.rho_s)):
            if pieces:
                z = cp.Variable(name=f"d_{side}")
                p[f"icept_{side}"] = cp.Parameter(pieces, name=f"icept_{side}")
                p[f"negslope_{side}"] = _nonneg(f"negslope_{side}", (pieces,))
                cons.append(z >= p[f"icept_{side}"] - p[f"negslope_{side}"] * ratio)
                terms.append(z)
        # Tiny terms only break ties where a fit is flat: keep more parameters, then use less of
        # both budgets, so loose budgets do not give an arbitrary interior point (as for the bound).
        return cp.Minimize(cp.sum(cp.hstack(terms)) - 1e-7 * kept + 1e-7 * (total_t + total_e))

    def _set(self, task: SplitTask) -> tuple[float, float, float]:
        """Write the task's numbers into the parameters; returns (T scale, E scale, distortion scale)."""
        st, p, m = self.structure, self.params, task.model
        ts = max(task.latency_s, 1.0 / _BIG)
        es = max(task.energy_j, 1.0 / _BIG)
        p["rho_lo"].value, p["rho_hi"].value = task.rho_lo, task.rho_hi
        p["rho_s_lo"].value, p["rho_s_hi"].value = task.rho_s_lo, task.rho_s_hi
        for side, flops, proc, pin in (
            ("device", m.device_flops, m.device, task.freq_device_hz),
            ("server", m.server_flops, m.server, task.freq_server_hz),
        ):
            if f"a_{side}" not in p:
                continue
            if pin is not None and (st.pin_f_device if side == "device" else st.pin_f_server):
                p[f"a_{side}"].value = flops / (pin * proc.flops_per_cycle * ts)
                p[f"k_{side}"].value = proc.pue * proc.power_coeff * flops * pin**2 / (proc.flops_per_cycle * es)
            else:
                p[f"a_{side}"].value = flops / (proc.f_max_hz * proc.flops_per_cycle * ts)
                if f"b_{side}" in p:
                    p[f"b_{side}"].value = flops / (proc.f_min_hz * proc.flops_per_cycle * ts)
                p[f"k_{side}"].value = flops * (proc.pue * proc.power_coeff / (es * ts * ts)) ** (1.0 / 3.0) / (
                    proc.flops_per_cycle
                )
        if st.has_upload:
            link, theta = m.link, m.payload_bits
            if st.pin_power:
                assert task.power_w is not None
                p["u_time"].value = link.time_s(theta, task.power_w) / ts
                p["u_energy"].value = link.energy_j(theta, task.power_w) / es
            else:
                p["u_time"].value = link.time_s(theta, link.p_max_w) / ts
                p["kappa"].value = theta * LN2 / (link.bandwidth_hz * ts)
                p["a_energy"].value = link.snr_per_watt * es / ts
        dscale = 1.0
        if "w_device" in p:
            n = m.device_params + m.server_params
            p["w_device"].value = m.device_params / n
            p["w_server"].value = m.server_params / n
            fits = [f for f in (task.fit_device, task.fit_server) if f is not None]
            if fits:
                dscale = max(max(abs(a) for a in f.intercepts) for f in fits) or 1.0
            for side, fit in (("device", task.fit_device), ("server", task.fit_server)):
                if f"icept_{side}" in p and fit is not None:
                    p[f"icept_{side}"].value = np.asarray(fit.intercepts) / dscale
                    p[f"negslope_{side}"].value = -np.asarray(fit.slopes) / dscale
        return ts, es, dscale

    def solve(self, task: SplitTask) -> RawSolution:
        ts, es, _ = self._set(task)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # An inaccurate solve is handled (logged, re-evaluated) here, not warned about.
                warnings.simplefilter("ignore", UserWarning)
                self.problem.solve(solver=cp.CLARABEL)
        except cp.error.SolverError as exc:
            logger.warning("Clarabel failed on split %s: %s", task.model.split, exc)
            return RawSolution("error", solve_time_s=time.perf_counter() - t0, message=str(exc))
        elapsed = time.perf_counter() - t0
        self.solves += 1
        status = self.problem.status
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            return RawSolution("infeasible", solve_time_s=elapsed)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return RawSolution("error", solve_time_s=elapsed, message=f"solver status {status}")
        if status == cp.OPTIMAL_INACCURATE:
            logger.info("split %s solved inaccurately", task.model.split)

        def val(d: dict[str, cp.Variable], key: str) -> float:
            v = d.get(key)
            return max(float(v.value), 0.0) if v is not None and v.value is not None else 0.0

        value = math.nan
        if self.structure.mode == "min_latency":
            value = float(self.problem.value) * ts
        elif self.structure.mode == "min_energy":
            value = float(self.problem.value) * es
        return RawSolution(
            "optimal",
            rho=_snap(scalar(self.rho), task.rho_lo, task.rho_hi),
            rho_s=_snap(scalar(self.rho_s), task.rho_s_lo, task.rho_s_hi),
            t_device=val(self.t, "device") * ts,
            t_upload=val(self.t, "upload") * ts,
            t_server=val(self.t, "server") * ts,
            e_device=val(self.e, "device") * es,
            e_upload=val(self.e, "upload") * es,
            e_server=val(self.e, "server") * es,
            value=value,
            solve_time_s=elapsed,
        )


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
