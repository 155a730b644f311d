"""The building blocks of the convex time/energy form of P1 (docs/design.md section 2).

One device-server pair's stages as cones over (ratio, time, energy), the
kept-fraction and measured-distortion objective terms, and the numbers a
`SplitTask` gives their parameters. `ExactProgram` (one pair) and `JointProgram`
(many devices on one server) assemble the same blocks; each decides how a
parameter is made (`ParamMaker`): one scalar `cp.Parameter` per name, or one
entry of a vector parameter shared by all devices, so a joint re-solve sets a
few vectors instead of hundreds of scalars. Times are in units of T0 and
energies of E0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cvxpy as cp
import numpy as np

from controller.system_model import LN2, SplitTask

if TYPE_CHECKING:
    from controller.exact import Structure

# Lower bound on the scale of a budget, so a near-zero budget cannot produce
# parameters of 1e20 (the problem is then reported infeasible, as it is).
_BIG = 1e12

# make(name, shape, nonneg) -> a parameter (or an entry of one) standing for that name
ParamMaker = Callable[[str, tuple[int, ...], bool], cp.Expression]
Values = dict[str, Any]


def dict_maker(p: dict[str, cp.Parameter]) -> ParamMaker:
    """One scalar (or shaped) parameter per name, kept in `p`."""

    def make(name: str, shape: tuple[int, ...] = (), nonneg: bool = True) -> cp.Expression:
        p[name] = cp.Parameter(shape, nonneg=nonneg, name=name)
        return p[name]

    return make


@dataclass
class StageVars:
    """One device-server pair's stage variables and constraints (times in T0, energies in E0)."""

    rho: cp.Variable
    rho_s: cp.Variable
    t: dict[str, cp.Variable]
    e: dict[str, cp.Variable]
    cons: list[cp.Constraint]
    total_t: cp.Expression
    total_e: cp.Expression


def build_stages(st: Structure, make: ParamMaker, tag: str = "") -> StageVars:
    """The per-stage cones of section 3 for one structure, with parameters from `make`."""
    rho, rho_s = cp.Variable(name=f"rho{tag}"), cp.Variable(name=f"rho_s{tag}")
    lo, hi, slo, shi = (make(key, (), True) for key in ("rho_lo", "rho_hi", "rho_s_lo", "rho_s_hi"))
    cons: list[cp.Constraint] = [rho >= lo, rho <= hi, rho_s >= slo, rho_s <= shi]
    times: list[cp.Expression] = []
    energies: list[cp.Expression] = []
    tv: dict[str, cp.Variable] = {}
    ev: dict[str, cp.Variable] = {}
    for side, present, pinned, ratio in (
        ("device", st.has_device, st.pin_f_device, rho),
        ("server", st.has_server, st.pin_f_server, rho_s),
    ):
        if not present:
            continue
        t = tv[side] = cp.Variable(nonneg=True, name=f"t_{side}{tag}")
        e = ev[side] = cp.Variable(nonneg=True, name=f"e_{side}{tag}")
        a, k = make(f"a_{side}", (), True), make(f"k_{side}", (), True)
        if pinned:
            cons += [t == a * ratio, e == k * ratio]
        else:
            cons += [a * ratio <= t, cp.PowCone3D(e, t, k * ratio, 1.0 / 3.0)]
            if st.fmin_device if side == "device" else st.fmin_server:
                cons.append(t <= make(f"b_{side}", (), True) * ratio)
        times.append(t)
        energies.append(e)
    if st.has_upload:
        tu = tv["upload"] = cp.Variable(nonneg=True, name=f"t_upload{tag}")
        eu = ev["upload"] = cp.Variable(nonneg=True, name=f"e_upload{tag}")
        u_time = make("u_time", (), True)
        if st.pin_power:
            cons += [tu == u_time, eu == make("u_energy", (), True)]
        else:
            x = cp.Variable(name=f"kappa_aux{tag}")
            a_energy = make("a_energy", (), True)
            cons += [tu >= u_time, x == make("kappa", (), True), cp.constraints.ExpCone(x, tu, a_energy * eu + tu)]
        times.append(tu)
        energies.append(eu)
    total_t = cp.sum(cp.hstack(times)) if times else cp.Constant(0.0)
    total_e = cp.sum(cp.hstack(energies)) if energies else cp.Constant(0.0)
    return StageVars(rho, rho_s, tv, ev, cons, total_t, total_e)


def kept_expr(make: ParamMaker, sv: StageVars) -> cp.Expression:
    """The kept fraction (rho q + rho~ s)/(q + s), its weights as parameters."""
    return make("w_device", (), True) * sv.rho + make("w_server", (), True) * sv.rho_s


def measured_terms(st: Structure, make: ParamMaker, sv: StageVars, tag: str = "") -> list[cp.Variable]:
    """Epigraph variables of the fitted distortion per side, max_j(icept_j - negslope_j rho)."""
    terms: list[cp.Variable] = []
    for side, pieces, ratio in (("device", st.pieces_device, sv.rho), ("server", st.pieces_server, sv.rho_s)):
        if pieces:
            z = cp.Variable(name=f"d_{side}{tag}")
            icept = make(f"icept_{side}", (pieces,), False)
            sv.cons.append(z >= icept - make(f"negslope_{side}", (pieces,), True) * ratio)
            terms.append(z)
    return terms


def stage_values(st: Structure, task: SplitTask) -> tuple[Values, float, float]:
    """The numbers of `build_stages`' parameters for a task, and its (T scale, E scale)."""
    m = task.model
    # Times are in units of what T0 leaves the stages after the measured fixed cost (T0 - T_fix), so the
    # budget row stays t1 + tU + t2 <= 1; min_latency has no budget row and keeps T0 as its unit.
    ts = max(task.latency_s if st.mode == "min_latency" else task.stage_budget_s, 1.0 / _BIG)
    es = max(task.energy_j, 1.0 / _BIG)
    v: Values = {"rho_lo": task.rho_lo, "rho_hi": task.rho_hi, "rho_s_lo": task.rho_s_lo, "rho_s_hi": task.rho_s_hi}
    for side, present, flops, proc, pin, fmin in (
        ("device", st.has_device, m.device_flops, m.device, task.freq_device_hz, st.fmin_device),
        ("server", st.has_server, m.server_flops, m.server, task.freq_server_hz, st.fmin_server),
    ):
        if not present:
            continue
        if pin is not None and (st.pin_f_device if side == "device" else st.pin_f_server):
            v[f"a_{side}"] = flops / (pin * proc.flops_per_cycle * ts)
            v[f"k_{side}"] = proc.pue * proc.power_coeff * flops * pin**2 / (proc.flops_per_cycle * es)
            continue
        v[f"a_{side}"] = flops / (proc.f_max_hz * proc.flops_per_cycle * ts)
        if fmin:
            v[f"b_{side}"] = flops / (proc.f_min_hz * proc.flops_per_cycle * ts)
        v[f"k_{side}"] = flops * (proc.pue * proc.power_coeff / (es * ts * ts)) ** (1.0 / 3.0) / proc.flops_per_cycle
    if st.has_upload:
        link, theta = m.link, m.payload_bits
        if st.pin_power:
            assert task.power_w is not None
            v["u_time"] = link.time_s(theta, task.power_w) / ts
            v["u_energy"] = link.energy_j(theta, task.power_w) / es
        else:
            v["u_time"] = link.time_s(theta, link.p_max_w) / ts
            v["kappa"] = theta * LN2 / (link.bandwidth_hz * ts)
            v["a_energy"] = link.snr_per_watt * es / ts
    return v, ts, es


def distortion_scale(task: SplitTask) -> float:
    """The largest |intercept| of the task's measured fits (1 without fits): the objective's unit."""
    fits = [f for f in (task.fit_device, task.fit_server) if f is not None]
    if not fits:
        return 1.0
    return max(max(abs(a) for a in f.intercepts) for f in fits) or 1.0


def objective_values(st: Structure, task: SplitTask, dscale: float, weight: float = 1.0) -> Values:
    """Kept-fraction weights and measured fits (in units of dscale), each times `weight`."""
    m = task.model
    n = m.device_params + m.server_params
    v: Values = {"w_device": weight * m.device_params / n, "w_server": weight * m.server_params / n}
    for side, pieces, fit in (("device", st.pieces_device, task.fit_device), ("server", st.pieces_server,
                                                                              task.fit_server)):
        if pieces and fit is not None:
            v[f"icept_{side}"] = weight * np.asarray(fit.intercepts) / dscale
            v[f"negslope_{side}"] = -weight * np.asarray(fit.slopes) / dscale
    return v
