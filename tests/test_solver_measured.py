"""Measured-distortion objective: the fit is convex and decreasing, and the plan follows the points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.measured import fit_convex_decreasing
from controller.planner import Planner
from controller.problem import Problem
from splitbed.errors import InvalidArgument

BASE: dict[str, Any] = json.loads(Path("examples/one_split.json").read_text())


def test_fit_is_convex_and_decreasing() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = np.sort(rng.uniform(0, 1, 9))
        y = (1 - x) ** rng.uniform(1, 3) + rng.normal(0, 0.03, x.size)  # noisy, not convex as given
        fit = fit_convex_decreasing(list(zip(x, np.abs(y), strict=True)))
        assert all(s <= 0 for s in fit.slopes)
        grid = np.linspace(0, 1, 201)
        vals = np.array([fit(g) for g in grid])
        assert np.all(np.diff(vals) <= 1e-12)
        assert np.all(vals[:-2] + vals[2:] - 2 * vals[1:-1] >= -1e-9)  # discrete convexity
    exact = [(0.0, 4.0), (0.5, 1.0), (1.0, 0.0)]  # already convex and decreasing: reproduced
    fit = fit_convex_decreasing(exact)
    assert [fit(r) for r, _ in exact] == pytest.approx([4.0, 1.0, 0.0], abs=1e-6)
    with pytest.raises(InvalidArgument):
        fit_convex_decreasing([(0.5, 1.0), (0.5, 2.0)])


def _measured(device: list[list[float]], server: list[list[float]]) -> Problem:
    points = {"device": device, "server": server}
    return Problem.model_validate({**BASE, "objective": "measured", "distortion_points": points})


def test_solution_responds_to_points() -> None:
    planner = Planner()
    flat = [[0.0, 1.0], [1.0, 0.0]]
    steep = [[0.0, 10.0], [1.0, 0.0]]
    a = planner.solve(_measured(steep, flat))
    b = planner.solve(_measured(flat, steep))
    assert a.status == b.status == "optimal" and a.objective == "measured"
    assert a.rho_device is not None and b.rho_device is not None
    assert a.rho_server is not None and b.rho_server is not None
    assert a.rho_device > b.rho_device and a.rho_server < b.rho_server  # budget follows the steeper curve
    assert a.objective_value == pytest.approx(10 * (1 - a.rho_device) + (1 - a.rho_server), rel=1e-6)
    sca = planner.solve(_measured(steep, flat), solver="sca")
    assert sca.objective_value == pytest.approx(a.objective_value, rel=1e-3)


def test_missing_points_named() -> None:
    with pytest.raises(ValueError, match=r"distortion_points\.server"):
        _measured([[0.0, 1.0], [1.0, 0.0]], [])


def test_loose_budgets_give_a_frugal_plan_not_an_interior_point() -> None:
    """At equal measured quality the plan uses no more of the budgets than the bound objective's does."""
    loose = {**BASE, "budget": {"latency_s": 5.0, "energy_j": 5.0}}
    points = {"device": [[0.0, 1.0], [1.0, 0.0]], "server": [[0.0, 1.0], [1.0, 0.0]]}
    measured = Planner().solve(Problem.model_validate({**loose, "objective": "measured", "distortion_points": points}))
    bound = Planner().solve(Problem.model_validate(loose))
    assert measured.status == bound.status == "optimal"
    assert measured.rho_device == pytest.approx(1.0, abs=1e-4) and measured.rho_server == pytest.approx(1.0, abs=1e-4)
    # Before the tie-break this plan took 4.36 s of the 5 s (the bound's plan: 0.37 s).
    assert measured.latency_s <= bound.latency_s * 1.25
    assert measured.energy_j <= bound.energy_j * 1.25
