"""T_fix, the measured per-request fixed cost: a constant in P1's latency row, in every prediction, measured by
the device."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.live_problem import problem_dict
from controller.multi_planner import MultiPlanner
from controller.multi_problem import MultiProblem
from controller.multi_random import random_problem
from controller.planner import Planner
from controller.problem import Problem
from controller.settings import ControllerSettings
from device_agent.fixed_cost import FROM_PROBE, FROM_REQUESTS, FixedCost, probe_s, unmodelled_s
from device_agent.record import RequestRecord, Timings
from splitbed.v1 import control_pb2

EXAMPLE = json.loads((Path(__file__).resolve().parent.parent / "examples" / "one_split.json").read_text())


def _problem(fixed: float, latency_s: float | None = None, **extra: Any) -> Problem:
    data = copy.deepcopy(EXAMPLE)
    data["fixed_latency_s"] = fixed
    if latency_s is not None:
        data["budget"]["latency_s"] = latency_s
    data.update(extra)
    return Problem.model_validate(data)


@pytest.mark.parametrize("solver", ["exact", "sca"])
def test_fixed_cost_is_the_budgets_constant_and_in_the_prediction(solver: str) -> None:
    t0, fixed = EXAMPLE["budget"]["latency_s"], 0.05
    planner = Planner()
    with_fix = planner.solve(_problem(fixed), solver=solver)
    # The same plan as the problem whose budget is what T_fix leaves the stages, and T_fix more latency.
    reduced = planner.solve(_problem(0.0, t0 - fixed), solver=solver)
    assert with_fix.status == reduced.status == "optimal"
    assert with_fix.rho_device == pytest.approx(reduced.rho_device, rel=1e-4, abs=1e-6)
    assert with_fix.rho_server == pytest.approx(reduced.rho_server, rel=1e-4, abs=1e-6)
    st = with_fix.stage
    assert st is not None and st.t_fixed == fixed
    assert with_fix.latency_s == pytest.approx(st.t_device + st.t_upload + st.t_server + fixed, rel=1e-12)
    assert with_fix.latency_s == pytest.approx(reduced.latency_s + fixed, rel=1e-5)
    assert with_fix.latency_s <= t0 * (1 + 1e-6)
    # Quality is lost to the fixed cost: less of the model is kept than without it.
    free = planner.solve(_problem(0.0), solver=solver)
    assert (with_fix.kept_params or 0) < (free.kept_params or 0)


def test_budget_below_the_fixed_cost_is_infeasible_and_says_what_is_needed() -> None:
    ans = Planner().solve(_problem(0.5, 0.3))
    assert ans.status == "infeasible"
    assert ans.min_latency_s is not None and ans.min_latency_s > 0.5  # T_fix plus the fastest stages
    again = Planner().solve(_problem(0.5, ans.min_latency_s * 1.001))
    assert again.status == "optimal"


def test_a_split_that_sends_nothing_pays_no_fixed_cost() -> None:
    data = copy.deepcopy(EXAMPLE)
    spec = data["splits"][0]
    data["splits"] = [{**spec, "split": 12, "device_flops": spec["device_flops"] + spec["server_flops"],
                       "server_flops": 0.0, "device_params": spec["device_params"] + spec["server_params"],
                       "server_params": 0.0, "payload_bits": 0.0}]
    data["budget"] = {"latency_s": 5.0, "energy_j": 5.0}
    ans = Planner().solve(Problem.model_validate({**data, "fixed_latency_s": 0.2}))
    assert ans.status == "optimal" and ans.stage is not None
    assert ans.stage.t_fixed == 0.0
    assert ans.latency_s == pytest.approx(ans.stage.t_device)


def test_joint_solver_keeps_each_devices_fixed_cost_in_its_budget() -> None:
    data = random_problem(np.random.default_rng(3), 3, 4)
    for i, dev in enumerate(data["devices"]):
        dev["fixed_latency_s"] = 0.2 * (i + 1) / 3 * dev["budget"]["latency_s"]
    answer = MultiPlanner().solve(MultiProblem.model_validate(data))
    assert answer.status == "optimal"
    by_id = {d["id"]: d for d in data["devices"]}
    for dev in answer.devices:
        st, spec = dev.stage, by_id[dev.id]
        assert st is not None and dev.latency_s is not None
        fixed = spec["fixed_latency_s"] if (dev.payload_bits or 0) > 0 else 0.0
        assert st.t_fixed == fixed
        assert dev.latency_s == pytest.approx(st.t_device + st.t_upload + st.t_server + fixed, rel=1e-12)
        assert dev.latency_s <= spec["budget"]["latency_s"] * (1 + 1e-5)


def _record(e2e: float, payload: int = 1000) -> RequestRecord:
    t = Timings(device_compute_s=0.010, encode_s=0.0002, upload_pacing_s=0.020, transfer_s=0.022,
                server_compute_s=0.015, server_other_s=0.0005, e2e_s=e2e, response_decode_s=0.0001,
                device_stretch_s=0.0, server_stretch_s=0.0)
    return RequestRecord(embedding=np.zeros(4, np.float32), n_tokens=4, seq_len=4, payload_bytes=payload,
                         config_version=1, split=3, rho=1.0, rho_server=1.0, method="magnitude", encoding="fp16",
                         timings=t, energy=None, predicted=None, prediction_error=None)


def test_device_measures_what_no_stage_covers() -> None:
    assert unmodelled_s(_record(0.048)) == pytest.approx(0.003)
    assert unmodelled_s(_record(0.048, payload=0)) is None  # finished on the device: no request was sent
    fc = FixedCost(min_requests=3)
    assert fc.estimate() is None
    fc.probed_s = 0.002
    assert fc.estimate() == (0.002, FROM_PROBE)
    for e2e in (0.048, 0.049, 0.060, 0.047):  # one slow outlier: the median keeps it out
        fc.observe(_record(e2e))
    value, source = fc.estimate() or (0.0, "")
    assert value == pytest.approx(0.0035) and source == FROM_REQUESTS


def test_live_problem_takes_the_devices_measured_fixed_cost() -> None:
    compute = control_pb2.ComputeProfile(achieved_flops_per_s=32e9, clock_hz=1e9, flops_per_cycle=32.0,
                                         f_max_hz=1e9, clock_backend="emulated", pue=1.0, power_coeff=1e-28)
    device = control_pb2.NodeProfile(model="m", n_layers=1, seq_len=32, compute=compute, fixed_latency_s=0.003,
                                     splits=[control_pb2.SplitCost(split=0, device_flops=0.0, server_flops=1e9,
                                                                   server_params=1e6, payload_bits=1e4)],
                                     link=control_pb2.LinkProfile(gain=1e-9, bandwidth_hz=1e6,
                                                                  noise_psd_w_per_hz=1e-20, p_max_w=1.0))
    server = control_pb2.NodeProfile(model="m", n_layers=1, seq_len=128, compute=compute)
    d = problem_dict(device, server, ControllerSettings(), latency_s=1.0, energy_j=1.0)
    assert d["fixed_latency_s"] == 0.003
    ans = Planner().solve(Problem.model_validate(d))
    assert ans.status == "optimal" and ans.stage is not None and ans.stage.t_fixed == 0.003


def test_probe_times_a_round_trip_and_the_codec_work() -> None:
    calls = []

    async def ping() -> None:
        calls.append(1)
        await asyncio.sleep(0.002)  # a 2 ms round trip

    value = asyncio.run(probe_s(ping, hidden_size=384, seq_len=64, encoding="fp16", rounds=3))
    assert len(calls) == 3
    assert 0.002 <= value < 0.5
