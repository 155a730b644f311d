"""`make demo`'s defaults, solved offline as the controller would plan them from ideal emulated profiles: the
first plan uses device layers and pruning, and the live budget change moves it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from controller.live_problem import problem_dict
from controller.planner import Planner
from controller.problem import Answer, Problem
from controller.settings import ControllerSettings
from device_agent.settings import AgentSettings
from edge_server.settings import EdgeSettings
from splitbed.channel import gain_from_distance
from splitbed.hw.clock.profiles import get_profile
from splitbed.model import resolve_model
from splitbed.side.profile import split_costs
from splitbed.v1 import control_pb2

ROOT = Path(__file__).resolve().parent.parent
EDGE_PHI = EdgeSettings.model_fields["power_coeff"].default  # the edge server's default phi


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compute(profile: str, power_coeff: float, c_scale: float) -> control_pb2.ComputeProfile:
    p = get_profile(profile)
    c = p.flops_per_cycle * c_scale  # an emulated clock achieves c, or less on a busy host
    return control_pb2.ComputeProfile(achieved_flops_per_s=p.f_max_hz * c, clock_hz=p.f_max_hz, flops_per_cycle=c,
                                      f_max_hz=p.f_max_hz, f_min_hz=p.f_min_hz, clock_backend="emulated",
                                      clock_emulated=True, pue=1.0, power_coeff=power_coeff,
                                      clock_steps_hz=list(p.steps_hz or ()))


def _solve(demo: ModuleType, budget: tuple[float, float], fixed_s: float, c_scale: float = 1.0) -> Answer:
    s = AgentSettings(server="127.0.0.1:1")
    src = resolve_model(s.model)
    device = control_pb2.NodeProfile(
        model=s.model, n_layers=src.n_layers, seq_len=demo.SEQ_LEN, encoding="fp16", fixed_latency_s=fixed_s,
        compute=_compute("paper-device", demo.DEVICE_POWER_COEFF, c_scale),
        splits=split_costs(src, demo.SEQ_LEN, "fp16"),
        link=control_pb2.LinkProfile(gain=gain_from_distance(demo.DISTANCE_M, s.k0_db, s.path_loss_exponent),
                                     bandwidth_hz=demo.BANDWIDTH_HZ, noise_psd_w_per_hz=s.noise_psd_w_per_hz,
                                     p_max_w=s.p_max_w))
    server = control_pb2.NodeProfile(model=s.model, n_layers=src.n_layers, seq_len=128,
                                     compute=_compute("edge-cpu", EDGE_PHI, 1.0))
    d = problem_dict(device, server, ControllerSettings(), latency_s=budget[0], energy_j=budget[1])
    return Planner().solve(Problem.model_validate(d))


@pytest.mark.parametrize(("fixed_s", "c_scale"), [(0.003, 1.0), (0.006, 1.0), (0.01, 1.0), (0.004, 30 / 32)])
def test_demo_budgets_plan_device_layers_with_pruning_and_the_change_moves_the_plan(fixed_s, c_scale):
    demo = _demo()
    first = _solve(demo, (demo.LATENCY_S, demo.ENERGY_J), fixed_s, c_scale)
    assert first.status == "optimal" and first.split is not None
    assert 1 <= first.split <= 5
    assert min(first.rho_device or 1.0, first.rho_server or 1.0) <= 0.9
    second = _solve(demo, (demo.NEW_LATENCY_S, demo.NEW_ENERGY_J), fixed_s, c_scale)
    assert second.status == "optimal"
    assert (second.split, second.rho_device, second.rho_server) != (first.split, first.rho_device, first.rho_server)
