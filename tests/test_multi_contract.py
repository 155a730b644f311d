"""The multi-device contract: K = 1 is P1, infeasibility is explained, bad input names the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from controller.multi_planner import MultiPlanner
from controller.multi_problem import MultiProblem
from controller.multi_random import random_problem
from controller.planner import Planner
from controller.problem import Problem
from tests.test_solver_exact import random_problem as random_single

PAPER: dict[str, Any] = json.loads(Path("examples/paper.json").read_text())
EXAMPLE: dict[str, Any] = json.loads(Path("examples/multi_device.json").read_text())
POINTS = {"device": [[0.0, 6.0], [0.4, 2.5], [0.8, 1.2], [1.0, 1.0]],
          "server": [[0.0, 4.0], [0.5, 1.5], [1.0, 1.0]]}


def as_multi(one: dict[str, Any]) -> dict[str, Any]:
    """A one-device problem as a group of one, with the shared constraints loose (u_max 1, rate 1/T0)."""
    link = one["link"]
    dev = {k: v for k, v in link.items() if k in ("gain", "distance_m", "k0_db", "alpha", "p_max_w")}
    dev.update(id="only", device=one["device"], budget=one["budget"], splits=one["splits"])
    for key in ("rho_min_device", "rho_min_server", "n_layers", "distortion_points", "pins"):
        if key in one:
            dev[key] = one[key]
    top = {k: one[k] for k in ("bits_per_param", "entropy_bits_per_param", "objective") if k in one}
    return {"server": one["server"], "link": {"bandwidth_hz": link["bandwidth_hz"],
            "noise_psd_w_per_hz": link["noise_psd_w_per_hz"]}, "u_max": 1.0, "devices": [dev], **top}


def _one_device_cases() -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    cases = [copy.deepcopy(PAPER)]
    for t0, e0 in ((0.2, 0.008), (0.5, 0.04), (0.3, 0.02)):
        p = copy.deepcopy(PAPER)
        p["budget"] = {"latency_s": t0, "energy_j": e0}
        cases.append(p)
    measured = copy.deepcopy(PAPER)
    measured.update(objective="measured", distortion_points=POINTS, rho_min_device=0.2)
    cases.append(measured)
    cases += [random_single(rng) for _ in range(12)]
    return cases


@pytest.mark.parametrize("one", _one_device_cases())
def test_group_of_one_is_p1(one: dict[str, Any]) -> None:
    single = Planner().solve(Problem.model_validate(one))
    multi = MultiPlanner().solve(MultiProblem.model_validate(as_multi(one)))
    assert multi.status == single.status
    if single.status != "optimal":
        assert multi.devices[0].status == "infeasible" and "infeasible alone" in (multi.devices[0].message or "")
        assert multi.devices[0].min_latency_s == pytest.approx(single.min_latency_s, rel=1e-6)
        return
    got = multi.devices[0]
    assert got.split == single.split
    assert got.objective_value == pytest.approx(single.objective_value, rel=1e-6, abs=1e-6)
    assert got.kept_params == pytest.approx(single.kept_params, rel=1e-5)
    for key in ("rho_device", "rho_server"):
        assert getattr(got, key) == pytest.approx(getattr(single, key), abs=2e-5), key
    kept_all = (single.kept_params or 0.0) >= (1 - 1e-6) * sum(  # nothing pruned: T and E are only a tie-break
        s["device_params"] + s["server_params"] for s in one["splits"] if s["split"] == single.split)
    for key in ("latency_s", "energy_j"):
        if not kept_all:
            assert getattr(got, key) == pytest.approx(getattr(single, key), rel=1e-3), key


def test_infeasible_device_is_named() -> None:
    prob = copy.deepcopy(EXAMPLE)
    prob["devices"][1].update(budget={"latency_s": 1e-3, "energy_j": 1.0}, rho_min_device=0.5, rho_min_server=0.5)
    ans = MultiPlanner().solve(MultiProblem.model_validate(prob))
    assert ans.status == "infeasible" and "raspberry-pi-4" in (ans.message or "")
    bad = ans.devices[1]
    assert bad.status == "infeasible" and "infeasible alone" in (bad.message or "")
    assert bad.min_latency_s is not None and bad.min_latency_s > 1e-3
    assert all("feasible alone" in (d.message or "") for d in ans.devices if d.id != "raspberry-pi-4")


def test_overloaded_server_is_explained() -> None:
    rng = np.random.default_rng(8)
    prob = random_problem(rng, 6, 3)
    for dev in prob["devices"]:
        dev["budget"]["latency_s"] *= 0.3  # every device needs the server (or its fastest split)
        dev.update(rate_hz=3.0 / dev["budget"]["latency_s"], rho_min_device=0.8, rho_min_server=0.8)
    ans = MultiPlanner().solve(MultiProblem.model_validate(prob))
    assert ans.status == "infeasible", ans
    assert "u_max" in (ans.message or "") or "infeasible alone" in " ".join(d.message or "" for d in ans.devices)


def test_fairness_max_min_raises_the_worst_device() -> None:
    base = copy.deepcopy(EXAMPLE)
    fair = dict(base, fairness="max-min")
    planner = MultiPlanner()
    a_sum = planner.solve(MultiProblem.model_validate(base))
    a_fair = planner.solve(MultiProblem.model_validate(fair))
    assert a_sum.status == a_fair.status == "optimal"

    def worst(ans: Any) -> float:
        return min((d.kept_params or 0.0) / 109482240 for d in ans.devices)

    assert a_fair.objective_value == pytest.approx(worst(a_fair), rel=1e-6)
    assert worst(a_fair) >= worst(a_sum) - 1e-6


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda p: p["devices"][1].update(id=p["devices"][0]["id"]), "ids must be unique"),
        (lambda p: p["devices"][2].pop("distance_m"), "devices.2"),
        (lambda p: p["devices"][0].update(pins={"split": 99}), "devices[0]"),
        (lambda p: p["devices"][0]["budget"].update(latency_s=float("nan")), "devices.0.budget.latency_s"),
        (lambda p: p.update(devices=p["devices"] * 17), "devices"),
        (lambda p: p.update(u_max=1.5), "u_max"),
        (lambda p: p["devices"][0].update(typo=1), "devices.0.typo"),
        (lambda p: p.update(split_search="exhaustive"), "exhaustive is limited"),
    ],
)
def test_bad_input_names_the_field(mutate: Any, needle: str) -> None:
    prob = copy.deepcopy(EXAMPLE)
    mutate(prob)
    with pytest.raises(ValidationError) as exc:
        MultiProblem.model_validate(prob)
    assert needle in str(exc.value)
