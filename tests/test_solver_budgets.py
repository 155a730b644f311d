"""Infeasible budgets: detection, and the reported minimal budgets are feasible and tight."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from controller.planner import Planner
from controller.problem import Problem


def _with_budget(prob: Problem, latency_s: float, energy_j: float) -> Problem:
    budget = prob.budget.model_copy(update={"latency_s": latency_s, "energy_j": energy_j})
    return prob.model_copy(update={"budget": budget})


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner()


@functools.cache
def _cases() -> list[Problem]:
    paper = Problem.load("examples/paper.json")
    one = Problem.load("examples/one_split.json")
    rng = np.random.default_rng(7)
    out = [_with_budget(one, 0.02, 0.03), _with_budget(one, 0.35, 0.004)]
    # Floors make compute unavoidable, so budgets can bind on either side.
    floored = one.model_copy(update={"rho_min_device": 0.5, "rho_min_server": 0.5})
    out += [_with_budget(floored, 0.2, 0.03), _with_budget(floored, 0.35, 0.012)]
    out.append(_with_budget(paper.model_copy(update={"rho_min_device": 0.3, "rho_min_server": 0.3}), 0.05, 0.005))
    # Random budgets, kept only when infeasible (the seed makes the draw the same every run).
    planner = Planner()
    while len(out) < 9:
        cand = _with_budget(floored, float(rng.uniform(0.05, 0.3)), float(rng.uniform(0.002, 0.02)))
        if planner.solve(cand).status == "infeasible":
            out.append(cand)
    return out


@pytest.mark.parametrize("case", range(9))
def test_infeasible_budget_reports_tight_minimal_budgets(planner: Planner, case: int) -> None:
    prob = _cases()[case]
    ans = planner.solve(prob)
    assert ans.status == "infeasible"
    assert ans.min_latency_s is not None or ans.min_energy_j is not None
    T0, E0 = prob.budget.latency_s, prob.budget.energy_j
    if ans.min_latency_s is not None:
        assert ans.min_latency_s > T0
        assert planner.solve(_with_budget(prob, ans.min_latency_s * (1 + 1e-4), E0)).status == "optimal"
        assert planner.solve(_with_budget(prob, ans.min_latency_s * (1 - 1e-3), E0)).status == "infeasible"
    if ans.min_energy_j is not None:
        assert ans.min_energy_j > E0
        assert planner.solve(_with_budget(prob, T0, ans.min_energy_j * (1 + 1e-4))).status == "optimal"
        assert planner.solve(_with_budget(prob, T0, ans.min_energy_j * (1 - 1e-3))).status == "infeasible"


def test_energy_below_any_upload_gives_no_latency(planner: Planner) -> None:
    one = Problem.load("examples/one_split.json")
    # Upload energy is at least theta ln2 / (B a) however slowly one sends: ~5.6e-4 J here.
    ans = planner.solve(_with_budget(one, 0.35, 1e-4))
    assert ans.status == "infeasible" and ans.min_latency_s is None
    assert ans.min_energy_j is not None and ans.min_energy_j > 1e-4


def test_sca_reports_infeasible_too(planner: Planner) -> None:
    one = Problem.load("examples/one_split.json")
    ans = planner.solve(_with_budget(one, 0.02, 0.03), solver="sca")
    assert ans.status == "infeasible" and ans.min_latency_s is not None
