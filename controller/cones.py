"""The building blocks of the convex time/energy form of P1 (DESIGN.md section 3).

One device-server pair's stages as cones over (ratio, time, energy), the
kept-fraction and measured-distortion objective terms, and the functions that
write a `SplitTask`'s numbers into their `cp.Parameter`s. `ExactProgram` (one
pair) and `JointProgram` (many devices on one server) assemble the same blocks.
Times are in units of T0 and energies of E0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cvxpy as cp
import numpy as np

from controller.system_model import LN2, SplitTask

if TYPE_CHECKING:
    from controller.exact import Structure

# Lower bound on the scale of a budget, so a near-zero budget cannot produce
# parameters of 1e20 (the problem is then reported infeasible, as it is).
_BIG = 1e12


def _nonneg(name: str, shape: tuple[int, ...] = ()) -> cp.Parameter:
    return cp.Parameter(shape, nonneg=True, name=name)


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


def build_stages(st: Structure, p: dict[str, cp.Parameter], tag: str = "") -> StageVars:
    """The per-stage cones of section 3 for one structure; parameters are created in `p`."""
    rho, rho_s = cp.Variable(name=f"rho{tag}"), cp.Variable(name=f"rho_s{tag}")
    for key in ("rho_lo", "rho_hi", "rho_s_lo", "rho_s_hi"):
        p[key] = _nonneg(key + tag)
    cons: list[cp.Constraint] = [rho >= p["rho_lo"], rho <= p["rho_hi"], rho_s >= p["rho_s_lo"], rho_s <= p["rho_s_hi"]]
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
        p[f"a_{side}"] = _nonneg(f"a_{side}{tag}")
        p[f"k_{side}"] = _nonneg(f"k_{side}{tag}")
        if pinned:
            cons += [t == p[f"a_{side}"] * ratio, e == p[f"k_{side}"] * ratio]
        else:
            cons += [
                p[f"a_{side}"] * ratio <= t,
                p[f"k_{side}"] * ratio <= cp.geo_mean(cp.hstack([e, t]), [1, 2]),
            ]
            if st.fmin_device if side == "device" else st.fmin_server:
                p[f"b_{side}"] = _nonneg(f"b_{side}{tag}")
                cons.append(t <= p[f"b_{side}"] * ratio)
        times.append(t)
        energies.append(e)
    if st.has_upload:
        tu = tv["upload"] = cp.Variable(nonneg=True, name=f"t_upload{tag}")
        eu = ev["upload"] = cp.Variable(nonneg=True, name=f"e_upload{tag}")
        p["u_time"] = _nonneg(f"u_time{tag}")
        if st.pin_power:
            p["u_energy"] = _nonneg(f"u_energy{tag}")
            cons += [tu == p["u_time"], eu == p["u_energy"]]
        else:
            p["kappa"] = _nonneg(f"kappa{tag}")
            p["a_energy"] = _nonneg(f"a_energy{tag}")
            x = cp.Variable(name=f"kappa_aux{tag}")
            cons += [tu >= p["u_time"], x == p["kappa"], cp.constraints.ExpCone(x, tu, p["a_energy"] * eu + tu)]
        times.append(tu)
        energies.append(eu)
    total_t = cp.sum(cp.hstack(times)) if times else cp.Constant(0.0)
    total_e = cp.sum(cp.hstack(energies)) if energies else cp.Constant(0.0)
    return StageVars(rho, rho_s, tv, ev, cons, total_t, total_e)


def kept_expr(p: dict[str, cp.Parameter], sv: StageVars, tag: str = "") -> cp.Expression:
    """The kept fraction (rho q + rho~ s)/(q + s), weights as parameters."""
    p["w_device"] = _nonneg(f"w_device{tag}")
    p["w_server"] = _nonneg(f"w_server{tag}")
    return p["w_device"] * sv.rho + p["w_server"] * sv.rho_s


def measured_terms(st: Structure, p: dict[str, cp.Parameter], sv: StageVars, tag: str = "") -> list[cp.Expression]:
    """Epigraph variables of the fitted distortion per side, max_j(icept_j - negslope_j rho)."""
    terms: list[cp.Expression] = []
    for side, pieces, ratio in (("device", st.pieces_device, sv.rho), ("server", st.pieces_server, sv.rho_s)):
        if pieces:
            z = cp.Variable(name=f"d_{side}{tag}")
            p[f"icept_{side}"] = cp.Parameter(pieces, name=f"icept_{side}{tag}")
            p[f"negslope_{side}"] = _nonneg(f"negslope_{side}{tag}", (pieces,))
            sv.cons.append(z >= p[f"icept_{side}"] - p[f"negslope_{side}"] * ratio)
            terms.append(z)
    return terms


def set_stage_params(st: Structure, p: dict[str, cp.Parameter], task: SplitTask) -> tuple[float, float]:
    """Write the task's stage numbers into `p` (built by `build_stages`); returns (T scale, E scale)."""
    m = task.model
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
    if "u_time" in p:
        link, theta = m.link, m.payload_bits
        if st.pin_power:
            assert task.power_w is not None
            p["u_time"].value = link.time_s(theta, task.power_w) / ts
            p["u_energy"].value = link.energy_j(theta, task.power_w) / es
        else:
            p["u_time"].value = link.time_s(theta, link.p_max_w) / ts
            p["kappa"].value = theta * LN2 / (link.bandwidth_hz * ts)
            p["a_energy"].value = link.snr_per_watt * es / ts
    return ts, es


def distortion_scale(task: SplitTask) -> float:
    """The largest |intercept| of the task's measured fits (1 without fits): the objective's unit."""
    fits = [f for f in (task.fit_device, task.fit_server) if f is not None]
    if not fits:
        return 1.0
    return max(max(abs(a) for a in f.intercepts) for f in fits) or 1.0


def set_objective_params(p: dict[str, cp.Parameter], task: SplitTask, dscale: float, weight: float = 1.0) -> None:
    """Kept-fraction weights and measured fits (in units of dscale), each times `weight`."""
    m = task.model
    n = m.device_params + m.server_params
    p["w_device"].value = weight * m.device_params / n
    p["w_server"].value = weight * m.server_params / n
    for side, fit in (("device", task.fit_device), ("server", task.fit_server)):
        if f"icept_{side}" in p and fit is not None:
            p[f"icept_{side}"].value = weight * np.asarray(fit.intercepts) / dscale
            p[f"negslope_{side}"].value = -weight * np.asarray(fit.slopes) / dscale
