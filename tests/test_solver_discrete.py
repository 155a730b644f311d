"""Plans put clocks on the hardware's discrete steps, and predict with those values."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from controller.planner import Planner
from controller.problem import Problem

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PAPER = json.loads((EXAMPLES / "paper.json").read_text())
DEVICE_STEPS = [3e8, 4.5e8, 6e8, 7.5e8, 9e8, 1e9]
SERVER_STEPS = [1e9, 1.6e9, 2.2e9, 2.8e9, 3.4e9, 4e9]


def _spec(split: int, latency_s: float, energy_j: float, steps: bool = True) -> dict:
    spec = json.loads(json.dumps(PAPER))
    spec["splits"] = [s for s in spec["splits"] if s["split"] == split]
    spec["budget"] = {"latency_s": latency_s, "energy_j": energy_j}
    # As the clock backends report them: the lowest step is the clock's floor.
    spec["device"]["f_min_hz"] = DEVICE_STEPS[0]
    spec["server"]["f_min_hz"] = SERVER_STEPS[0]
    if steps:
        spec["device"]["clock_steps_hz"] = DEVICE_STEPS
        spec["server"]["clock_steps_hz"] = SERVER_STEPS
    return spec


def _on(value: float, steps: list[float]) -> bool:
    return any(abs(value - s) <= 1e-6 * s for s in steps)


@pytest.mark.parametrize(("split", "latency_s", "energy_j"), [(4, 0.35, 0.015), (4, 0.3, 0.03), (8, 0.35, 0.015),
                                                             (11, 0.21, 0.05), (1, 0.21, 0.05)])
def test_clocks_land_on_steps_and_prediction_is_consistent(split, latency_s, energy_j):
    planner = Planner()
    continuous = planner.solve(Problem.model_validate(_spec(split, latency_s, energy_j, steps=False)))
    problem = Problem.model_validate(_spec(split, latency_s, energy_j))
    ans = planner.solve(problem)
    assert continuous.status == "optimal" and ans.status == "optimal", ans.message
    if ans.rho_device and ans.rho_device > 0:
        assert _on(ans.freq_device_hz, DEVICE_STEPS), ans.freq_device_hz
    if ans.rho_server and ans.rho_server > 0:
        assert _on(ans.freq_server_hz, SERVER_STEPS), ans.freq_server_hz
    # The prediction is the system model evaluated at the applied (step) clocks.
    model = problem.split_model(problem.splits[0])
    st = model.stages(ans.rho_device, ans.rho_server, ans.power_w, ans.freq_device_hz, ans.freq_server_hz)
    assert ans.latency_s == pytest.approx(st.latency_s, rel=1e-9)
    assert ans.energy_j == pytest.approx(st.energy_j, rel=1e-9)
    assert ans.latency_s <= latency_s * (1 + 1e-6) and ans.energy_j <= energy_j * (1 + 1e-6)
    # Steps can only cost quality against the continuous optimum.
    assert ans.objective_value >= continuous.objective_value - 1e-7


def test_neighbour_search_matches_brute_force_over_all_steps():
    """On these instances the best of the neighbouring steps is the best over every step pair."""
    planner = Planner()
    for split, (latency_s, energy_j) in itertools.product((2, 4, 8), ((0.35, 0.015), (0.25, 0.02))):
        ans = planner.solve(Problem.model_validate(_spec(split, latency_s, energy_j)))
        best = np.inf
        for fd, fs in itertools.product(DEVICE_STEPS, SERVER_STEPS):
            spec = _spec(split, latency_s, energy_j, steps=False)
            spec["pins"] = {"freq_device_hz": fd, "freq_server_hz": fs}
            pinned = planner.solve(Problem.model_validate(spec))
            if pinned.status == "optimal":
                best = min(best, pinned.objective_value)
        if ans.status != "optimal":
            assert best == np.inf
            continue
        assert ans.objective_value == pytest.approx(best, abs=1e-6)


def test_no_feasible_step_is_reported_as_infeasible():
    spec = _spec(4, 0.35, 0.015)
    # One step only, far below what the latency budget needs.
    spec["device"]["clock_steps_hz"] = [1e8]
    spec["server"]["clock_steps_hz"] = [1e8]
    spec["device"]["f_min_hz"] = 1e8
    spec["server"]["f_min_hz"] = 1e8
    spec["rho_min_device"] = spec["rho_min_server"] = 1.0  # no pruning to buy the time back
    ans = Planner().solve(Problem.model_validate(spec))
    assert ans.status == "infeasible"


def test_steps_above_f_max_are_rejected():
    spec = _spec(4, 0.35, 0.015)
    spec["device"]["clock_steps_hz"] = [2e9]
    with pytest.raises(ValueError, match="clock_steps_hz"):
        Problem.model_validate(spec)


def test_a_pinned_clock_is_planned_at_the_step_the_hardware_applies():
    spec = _spec(4, 0.5, 0.05)
    spec["pins"] = {"freq_device_hz": 8.2e8, "freq_server_hz": 3.9e9}
    ans = Planner().solve(Problem.model_validate(spec))
    assert ans.status == "optimal"
    assert ans.freq_device_hz == pytest.approx(7.5e8)  # cpufreq/devfreq/emulated snap down
    assert ans.freq_server_hz == pytest.approx(3.4e9)
