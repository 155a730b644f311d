"""The multi-device solver: split search against brute force, every constraint, K = 1 against P1, bounds."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from controller.multi_planner import GroupSearch, MultiPlanner
from controller.multi_problem import MultiAnswer, MultiProblem
from controller.multi_random import random_problem

RTOL = 1e-6


@pytest.fixture(scope="module")
def planner() -> MultiPlanner:
    return MultiPlanner()


def _pairs(planner: MultiPlanner, k: int, n_splits: int, count: int, seed: int) -> list[tuple[MultiProblem, Any, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        fairness = "max-min" if i % 4 == 3 else "sum"
        prob = MultiProblem.model_validate(random_problem(rng, k, n_splits, fairness=fairness))
        out.append((prob, planner.solve(prob), planner.solve(prob.model_copy(update={"split_search": "exhaustive"}))))
    return out


def test_measured_objective_matches_brute_force(planner: MultiPlanner) -> None:
    rng = np.random.default_rng(21)
    solved = 0
    for i in range(10):
        prob = MultiProblem.model_validate(random_problem(rng, 2 + i % 2, 4, measured=True,
                                                          fairness="sum" if i % 3 else "max-min"))
        ans = planner.solve(prob)
        brute = planner.solve(prob.model_copy(update={"split_search": "exhaustive"}))
        assert ans.status == brute.status
        if ans.status == "optimal":
            assert ans.search and brute.search and ans.search.score is not None and brute.search.score is not None
            assert ans.search.score <= brute.search.score + RTOL * max(1.0, abs(brute.search.score))
            assert all(d.objective == "measured" for d in ans.devices)
            solved += 1
    assert solved >= 6


@pytest.fixture(scope="module")
def instances(planner: MultiPlanner) -> list[tuple[MultiProblem, Any, Any]]:
    """50 random instances with K = 2 (5 splits each) and 50 with K = 3 (4 splits), a quarter max-min."""
    return _pairs(planner, 2, 5, 50, 11) + _pairs(planner, 3, 4, 50, 12)


def test_search_matches_brute_force(instances: list[tuple[MultiProblem, MultiAnswer, MultiAnswer]]) -> None:
    gaps, nontrivial, optimal = [], 0, 0
    for prob, ans, brute in instances:
        assert ans.status == brute.status, (prob, ans.message, brute.message)
        if ans.status != "optimal":
            continue
        optimal += 1
        assert ans.search is not None and brute.search is not None
        assert ans.search.score is not None and brute.search.score is not None
        gap = (ans.search.score - brute.search.score) / max(1.0, abs(brute.search.score))
        gaps.append(gap)
        nontrivial += ans.search.start != [d.split for d in brute.devices]
    print(f"\nsplit search vs brute force: {optimal} optimal of {len(instances)}, max relative gap {max(gaps):.2e}, "
          f"{nontrivial} where the best combination differs from the start")
    assert max(gaps) <= RTOL
    assert min(gaps) >= -RTOL  # brute force is never beaten by more than the solver's accuracy
    assert optimal >= 80 and nontrivial >= 5  # the instances exercise the search


def test_tight_instances_gap_is_reported(planner: MultiPlanner) -> None:
    """Where the best splits alone overload the server the descent may miss the best combination;
    the answer's own certificate (score - dual_bound) then covers the true gap."""
    rng = np.random.default_rng(31)
    gaps, phase1 = [], 0
    for _ in range(40):
        prob = MultiProblem.model_validate(random_problem(rng, 3, 4, tight=True))
        ans = planner.solve(prob)
        brute = planner.solve(prob.model_copy(update={"split_search": "exhaustive"}))
        assert ans.status == brute.status
        if ans.status != "optimal":
            continue
        assert ans.search and brute.search and ans.search.score is not None and brute.search.score is not None
        assert ans.search.dual_bound is not None
        gap = ans.search.score - brute.search.score
        assert gap >= -RTOL * max(1.0, abs(brute.search.score))
        assert ans.search.score - ans.search.dual_bound >= gap - RTOL * max(1.0, abs(brute.search.score))
        gaps.append(gap / max(1.0, abs(brute.search.score)))
        phase1 += ans.search.phase1_evaluated > 0
    print(f"\ntight instances: {len(gaps)} optimal, {phase1} from phase 1, {sum(g > RTOL for g in gaps)} with a gap, "
          f"max relative gap {max(gaps):.2e}")
    assert len(gaps) >= 25 and phase1 >= 2


def _plain(dev: Any, server: Any, link: Any, ans: Any) -> tuple[float, float, float, float]:
    """T, E, t~ and t^U from the paper's eqs. 2, 4-11, written out apart from the controller."""
    sp = next(s for s in dev.splits if s.split == ans.split)
    d, g = dev.device, dev.gain
    t = e = t_srv = t_up = 0.0
    if sp.device_flops > 0 and ans.rho_device > 0:
        t += ans.rho_device * sp.device_flops / (ans.freq_device_hz * d.flops_per_cycle)
        e += d.pue * ans.rho_device * sp.device_flops * d.power_coeff * ans.freq_device_hz**2 / d.flops_per_cycle
    if sp.payload_bits > 0:
        r = link.bandwidth_hz * math.log2(1 + g * ans.power_w / (link.bandwidth_hz * link.noise_psd_w_per_hz))
        t_up = sp.payload_bits / r
        t, e = t + t_up, e + ans.power_w * t_up
    if sp.server_flops > 0 and ans.rho_server > 0:
        t_srv = ans.rho_server * sp.server_flops / (ans.freq_server_hz * server.flops_per_cycle)
        t += t_srv
        e += server.pue * ans.rho_server * sp.server_flops * server.power_coeff * ans.freq_server_hz**2 / (
            server.flops_per_cycle)
    return t, e, t_srv, t_up


def test_every_plan_meets_every_constraint(instances: list[tuple[MultiProblem, MultiAnswer, MultiAnswer]]) -> None:
    for prob, ans, _ in instances:
        if ans.status != "optimal":
            continue
        server_load = uplink_load = 0.0
        for dev, a in zip(prob.devices, ans.devices, strict=True):
            assert a.id == dev.id and a.status == "optimal"
            t, e, t_srv, t_up = _plain(dev, prob.server, prob.link, a)
            assert t <= dev.budget.latency_s * (1 + RTOL) and e <= dev.budget.energy_j * (1 + RTOL), (dev.id, a)
            assert math.isclose(t, a.latency_s, rel_tol=1e-9) and math.isclose(e, a.energy_j, rel_tol=1e-9)
            sp = next(s for s in dev.splits if s.split == a.split)
            if sp.device_params > 0:
                assert dev.rho_min_device - 1e-9 <= a.rho_device <= 1.0
                assert dev.device.f_min_hz * (1 - RTOL) <= a.freq_device_hz <= dev.device.f_max_hz * (1 + RTOL)
            if sp.server_params > 0:
                assert dev.rho_min_server - 1e-9 <= a.rho_server <= 1.0
                assert prob.server.f_min_hz * (1 - RTOL) <= a.freq_server_hz <= prob.server.f_max_hz * (1 + RTOL)
            assert 0.0 <= a.power_w <= dev.p_max_w * (1 + RTOL)
            server_load += dev.rate * t_srv
            uplink_load += dev.rate * t_up
        assert server_load <= prob.u_max * (1 + RTOL) and uplink_load <= prob.u_max * (1 + RTOL)
        assert math.isclose(server_load, ans.server_utilisation or 0.0, rel_tol=1e-6, abs_tol=1e-12)
        assert math.isclose(uplink_load, ans.uplink_utilisation or 0.0, rel_tol=1e-6, abs_tol=1e-12)


@pytest.mark.parametrize(("fairness", "measured"), [("sum", False), ("max-min", False), ("sum", True),
                                                     ("max-min", True)])
def test_lagrangian_bound_holds_for_every_combination(planner: MultiPlanner, fairness: str, measured: bool) -> None:
    """score(c) >= sum_k G[k][c_k] - C for every combination c, at the prices of any solved one."""
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(6):
        prob = MultiProblem.model_validate(random_problem(rng, 3, 4, measured=measured, fairness=fairness))
        cases = [planner.device_case(s, p) for s, p in zip(prob.devices, prob.device_problems(), strict=True)]
        if any(not c.candidates for c in cases):
            continue
        run = GroupSearch(planner, prob, cases)
        combos = list(itertools.product(*(range(n) for n in run.sizes)))
        scores = {c: run.quality(c) for c in combos}
        for at in [c for c in combos if math.isfinite(scores[c])][:4]:
            table = run.bound(at)
            assert table is not None
            g, const = table
            for c in combos:
                low = sum(g[k][j] for k, j in enumerate(c)) - const
                assert low <= scores[c] + 1e-6 * max(1.0, abs(scores[c])), (at, c, low, scores[c])
            checked += 1
    assert checked >= 4


def test_compiled_programs_are_bounded() -> None:
    """A long-lived planner meeting ever new groups keeps at most max_programs compiled programs."""
    planner = MultiPlanner(max_programs=2)
    rng = np.random.default_rng(5)
    for k in (1, 2, 3, 2):
        ans = planner.solve(MultiProblem.model_validate(random_problem(rng, k, 3)))
        assert ans.status in ("optimal", "infeasible")
        assert planner.compiled <= 2
