"""A clock's lowest step is a constraint of the plan, not an afterthought of the hardware."""

from __future__ import annotations

import json

import pytest

from controller.planner import Planner
from controller.problem import Problem
from tests.launch import ROOT

BASE = json.loads((ROOT / "examples" / "one_split.json").read_text())


@pytest.mark.parametrize("solver", ["exact", "sca"])
def test_plan_respects_f_min_under_loose_budgets(solver):
    spec = json.loads(json.dumps(BASE))
    spec["budget"] = {"latency_s": 20.0, "energy_j": 5.0}
    spec["device"]["f_min_hz"] = 5e8
    spec["server"]["f_min_hz"] = 1.5e9
    answer = Planner().solve(Problem.model_validate(spec), solver=solver)
    assert answer.status == "optimal"
    assert answer.rho_device == pytest.approx(1.0) and answer.rho_server == pytest.approx(1.0)
    assert answer.freq_device_hz >= 5e8 * (1 - 1e-6)
    assert answer.freq_server_hz >= 1.5e9 * (1 - 1e-6)
    assert answer.latency_s <= 20.0 and answer.energy_j <= 5.0 * (1 + 1e-6)


def test_f_min_can_make_a_budget_infeasible():
    spec = json.loads(json.dumps(BASE))
    # At f_min = f_max the device stage alone costs eta phi N f^2 / c = 5e-29 * 7.26e9 * 1e18 / 32 = 11.3 mJ.
    spec["device"]["f_min_hz"] = spec["device"]["f_max_hz"]
    spec["budget"] = {"latency_s": 10.0, "energy_j": 0.011}
    spec["rho_min_device"] = 1.0
    assert Planner().solve(Problem.model_validate(spec)).status == "infeasible"
    spec["device"]["f_min_hz"] = 0.0
    assert Planner().solve(Problem.model_validate(spec)).status == "optimal"


def test_f_min_above_f_max_is_rejected():
    spec = json.loads(json.dumps(BASE))
    spec["device"]["f_min_hz"] = 2e9
    with pytest.raises(ValueError, match="f_min_hz"):
        Problem.model_validate(spec)
