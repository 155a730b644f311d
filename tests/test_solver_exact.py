"""The exact solver against the plain formulas and a dense brute-force search; schemes and SCA against it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from controller.planner import Planner
from controller.problem import Problem
from controller.schemes import SCHEMES

RTOL = 1e-6


def random_problem(rng: np.random.Generator, kind: str | None = None) -> dict[str, Any]:
    """A random single-split instance near the paper's setting, with budgets that are usually feasible."""
    kind = kind or rng.choice(["split", "split", "split", "split", "on-server", "on-device"])
    layer = 10 ** rng.uniform(8.5, 9.6)
    n_layers = 12
    L = {"on-server": 0, "on-device": n_layers}.get(kind, int(rng.integers(1, n_layers)))
    dev = {"f_max_hz": 10 ** rng.uniform(8.7, 9.5), "flops_per_cycle": float(rng.choice([8, 16, 32, 64])),
           "pue": rng.uniform(1.0, 1.5), "power_coeff": 10 ** rng.uniform(-29.3, -28)}
    srv = {"f_max_hz": 10 ** rng.uniform(9.3, 9.7), "flops_per_cycle": float(rng.choice([64, 128, 256])),
           "pue": rng.uniform(1.0, 2.5), "power_coeff": 10 ** rng.uniform(-28.5, -27.5)}
    link = {"bandwidth_hz": 10 ** rng.uniform(6, 7.3), "noise_psd_w_per_hz": 2e-19 * 10 ** rng.uniform(-0.3, 0.3),
            "p_max_w": rng.uniform(0.1, 1.0), "distance_m": rng.uniform(100, 1000), "k0_db": -30.0, "alpha": 2.8}
    payload = 0.0 if n_layers == L else (4096.0 if L == 0 else 10 ** rng.uniform(5, 6.7))
    q = 0.0 if L == 0 else 2.4e7 + 7.1e6 * L
    s = 1.095e8 - q
    N, Ns = L * layer, (n_layers - L) * layer
    g = 10 ** (-3) * link["distance_m"] ** -2.8
    a = g / (link["bandwidth_hz"] * link["noise_psd_w_per_hz"])
    r_max = link["bandwidth_hz"] * math.log2(1 + a * link["p_max_w"])
    t_up = payload / r_max
    e_up_min = payload * math.log(2) / (link["bandwidth_hz"] * a)
    t_full = N / (dev["f_max_hz"] * dev["flops_per_cycle"]) + Ns / (srv["f_max_hz"] * srv["flops_per_cycle"])
    e_full = (dev["pue"] * dev["power_coeff"] * N * (0.5 * dev["f_max_hz"]) ** 2 / dev["flops_per_cycle"]
              + srv["pue"] * srv["power_coeff"] * Ns * (0.5 * srv["f_max_hz"]) ** 2 / srv["flops_per_cycle"])
    budget = {"latency_s": t_up * rng.uniform(1.05, 3) + t_full * rng.uniform(0.05, 1.5),
              "energy_j": e_up_min * rng.uniform(1.5, 6) + e_full * rng.uniform(0.02, 1.2)}
    return {"device": dev, "server": srv, "link": link, "budget": budget, "n_layers": n_layers,
            "splits": [{"split": L, "device_flops": N, "server_flops": Ns, "device_params": q,
                        "server_params": s, "payload_bits": payload}]}


def plain_totals(prob: Problem, ans: Any) -> tuple[float, float]:
    """T and E from the paper's eqs. 2, 4-11, written out independently of the controller."""
    sp, d, sv, ln = prob.splits[0] if len(prob.splits) == 1 else next(
        x for x in prob.splits if x.split == ans.split), prob.device, prob.server, prob.link
    assert ln.gain is not None
    T = E = 0.0
    if sp.device_flops > 0 and ans.rho_device > 0:
        T += ans.rho_device * sp.device_flops / (ans.freq_device_hz * d.flops_per_cycle)
        E += d.pue * ans.rho_device * sp.device_flops * d.power_coeff * ans.freq_device_hz**2 / d.flops_per_cycle
    if sp.payload_bits > 0:
        r = ln.bandwidth_hz * math.log2(1 + ln.gain * ans.power_w / (ln.bandwidth_hz * ln.noise_psd_w_per_hz))
        T += sp.payload_bits / r
        E += ans.power_w * sp.payload_bits / r
    if sp.server_flops > 0 and ans.rho_server > 0:
        T += ans.rho_server * sp.server_flops / (ans.freq_server_hz * sv.flops_per_cycle)
        E += sv.pue * ans.rho_server * sp.server_flops * sv.power_coeff * ans.freq_server_hz**2 / sv.flops_per_cycle
    return T, E


def brute_force_kept(prob: Problem, n: int = 36) -> float:
    """Best rho q + rho~ s over a grid of (p, f, f~), with the best ratios for each grid point (a 2-variable LP)."""
    sp, d, sv, ln = prob.splits[0], prob.device, prob.server, prob.link
    assert ln.gain is not None
    T0, E0 = prob.budget.latency_s, prob.budget.energy_j
    grid = np.linspace(1.0 / n, 1.0, n)
    p = grid * ln.p_max_w if sp.payload_bits > 0 else np.array([0.0])
    f = grid * d.f_max_hz if sp.device_flops > 0 else np.array([1.0])
    fs = grid * sv.f_max_hz if sp.server_flops > 0 else np.array([1.0])
    P, F, FS = np.meshgrid(p, f, fs, indexing="ij")
    if sp.payload_bits > 0:
        r = ln.bandwidth_hz * np.log2(1 + ln.gain * P / (ln.bandwidth_hz * ln.noise_psd_w_per_hz))
        tu, eu = sp.payload_bits / r, P * sp.payload_bits / r
    else:
        tu = eu = np.zeros_like(P)
    a1 = sp.device_flops / (F * d.flops_per_cycle)
    c1 = d.pue * sp.device_flops * d.power_coeff * F**2 / d.flops_per_cycle
    a2 = sp.server_flops / (FS * sv.flops_per_cycle)
    c2 = sv.pue * sp.server_flops * sv.power_coeff * FS**2 / sv.flops_per_cycle
    b, dd = T0 - tu, E0 - eu
    lo1, lo2 = prob.rho_min_device, prob.rho_min_server
    if sp.device_params == 0 and sp.device_flops == 0:
        lo1 = 1.0
    best = np.full(P.shape, -np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        cands = [np.zeros_like(P), np.ones_like(P), (b - a2) / a1, (dd - c2) / c1, b / a1, dd / c1,
                 (b * c2 - dd * a2) / (a1 * c2 - c1 * a2), (b - a2 * lo2) / a1, (dd - c2 * lo2) / c1]
        for x in cands:
            x = np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0), lo1, 1.0)
            y = np.minimum(1.0, np.minimum((b - a1 * x) / a2, (dd - c1 * x) / c2))
            y = np.nan_to_num(y, nan=1.0, posinf=1.0, neginf=-1.0)
            ok = (y >= lo2) & (a1 * x <= b * (1 + 1e-12)) & (c1 * x <= dd * (1 + 1e-12)) & (b >= 0) & (dd >= 0)
            best = np.where(ok, np.maximum(best, x * sp.device_params + y * sp.server_params), best)
    return float(best.max())


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner()


@pytest.fixture(scope="module")
def instances(planner: Planner) -> list[tuple[Problem, Any]]:
    rng = np.random.default_rng(20250514)
    out: list[tuple[Problem, Any]] = []
    paper = Problem.load("examples/paper.json")
    for spec in paper.splits:
        one = paper.model_copy(update={"splits": [spec]})
        out.append((one, planner.solve(one)))
    while len(out) < 215:
        prob = Problem.model_validate(random_problem(rng))
        ans = planner.solve(prob)
        if ans.status == "optimal":
            out.append((prob, ans))
        else:
            assert ans.status == "infeasible", ans.message
    return out


def test_exact_meets_every_constraint(instances: list[tuple[Problem, Any]]) -> None:
    for prob, ans in instances:
        T, E = plain_totals(prob, ans)
        assert prob.budget.latency_s * (1 + RTOL) >= T, (prob, ans)
        assert prob.budget.energy_j * (1 + RTOL) >= E, (prob, ans)
        assert math.isclose(T, ans.latency_s, rel_tol=1e-9) and math.isclose(E, ans.energy_j, rel_tol=1e-9)
        assert 0.0 <= ans.rho_device <= 1.0 and 0.0 <= ans.rho_server <= 1.0
        assert 0.0 <= ans.power_w <= prob.link.p_max_w
        assert 0.0 <= ans.freq_device_hz <= prob.device.f_max_hz
        assert 0.0 <= ans.freq_server_hz <= prob.server.f_max_hz


def test_exact_never_below_brute_force(instances: list[tuple[Problem, Any]]) -> None:
    gaps = []
    for prob, ans in instances:
        brute = brute_force_kept(prob)
        assert ans.kept_params >= brute * (1 - RTOL), (prob, ans, brute)
        gaps.append((ans.kept_params - brute) / max(ans.kept_params, 1.0))
    # The grid is dense enough to come close: the comparison is not vacuous.
    assert float(np.median(gaps)) < 0.05


def test_degenerate_splits_drop_the_empty_stage(planner: Planner) -> None:
    paper = Problem.load("examples/paper.json")
    ans = planner.solve(paper)
    by_split = {a.split: a for a in ans.per_split or []}
    first, last = by_split[0], by_split[12]
    assert first.stage is not None and last.stage is not None
    assert first.stage.t_device == 0.0 and first.freq_device_hz == 0.0 and first.rho_device == 1.0
    assert last.stage.t_upload == 0.0 and last.stage.t_server == 0.0 and last.payload_bits == 0.0
    assert last.power_w == 0.0 and last.rate_bps is None
    assert ans.split == min(by_split.values(), key=lambda a: a.log2_distortion_bound or math.inf).split


def test_split_search_picks_the_best(planner: Planner) -> None:
    paper = Problem.load("examples/paper.json")
    ans = planner.solve(paper)
    assert ans.per_split is not None and len(ans.per_split) == 13
    best = max(a.kept_params or -1.0 for a in ans.per_split if a.status == "optimal")
    assert ans.kept_params == best


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "joint"])
def test_schemes_never_beat_joint(planner: Planner, instances: list[tuple[Problem, Any]], scheme: str) -> None:
    paper = Problem.load("examples/paper.json")
    cases = [(paper, planner.solve(paper)), *instances[13:60]]
    for prob, joint in cases:
        if scheme in ("on-server", "on-device") and len(prob.splits) == 1:
            continue
        alt = planner.solve(prob, scheme=scheme)
        assert alt.scheme == scheme
        if alt.status == "optimal":
            assert alt.kept_params <= joint.kept_params * (1 + RTOL)
            T, E = plain_totals(prob, alt)
            assert prob.budget.latency_s * (1 + RTOL) >= T and prob.budget.energy_j * (1 + RTOL) >= E
        if scheme == "fixed-power" and alt.status == "optimal" and alt.payload_bits:
            assert alt.power_w == prob.link.p_max_w
        if scheme == "fixed-clocks" and alt.status == "optimal" and alt.rho_device and alt.stage and alt.stage.t_device:
            assert alt.freq_device_hz == prob.device.f_max_hz


def test_sca_from_phase1_reaches_exact(planner: Planner, instances: list[tuple[Problem, Any]]) -> None:
    # The paper's split 4 plus random instances. (On the paper's splits 2-8 one ratio is driven to 0 at
    # nearly tied marginal values and SCA converges sublinearly: bench/solver.py reports that gap.)
    for prob, exact in [instances[4], *instances[13:40]]:
        sca = planner.solve(prob, solver="sca")
        assert sca.status == "optimal" and sca.iterations is not None and sca.iterations >= 1
        assert sca.objective_trace is not None and len(sca.objective_trace) == sca.iterations
        n = prob.splits[0].device_params + prob.splits[0].server_params
        assert sca.kept_params is not None and exact.kept_params is not None
        assert sca.kept_params / n >= exact.kept_params / n - 1e-3 * max(exact.kept_params / n, 1e-3)
        assert sca.kept_params <= exact.kept_params * (1 + RTOL)
        T, E = plain_totals(prob, sca)
        assert prob.budget.latency_s * (1 + 1e-5) >= T and prob.budget.energy_j * (1 + 1e-5) >= E


def test_sca_natural_start_reports_infeasible_first_step(planner: Planner) -> None:
    paper = Problem.load("examples/paper.json")
    one = paper.model_copy(update={"splits": [paper.splits[4]]})
    ans = planner.solve(one, solver="sca", sca_start="natural")
    assert ans.status == "error" and ans.message is not None and "natural start" in ans.message
    assert planner.solve(one).status == "optimal"
