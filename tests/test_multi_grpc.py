"""gRPC `Solve` with the multi-device form, against a real `controller serve` on free ports."""

from __future__ import annotations

import copy
import json
from typing import Any

import grpc
import pytest

from splitbed.v1 import control_pb2, control_pb2_grpc
from tests.launch import ROOT, child_env, start_controller
from tests.test_multi_service import MULTI, ONE, _check_answer


@pytest.fixture(scope="module")
def stub():
    # max_splits 20: the examples' 13 splits pass, a device with more is refused
    proc = start_controller(env={**child_env(), "CONTROLLER_MAX_SPLITS": "20"})
    channel = grpc.insecure_channel(proc.address)
    try:
        yield control_pb2_grpc.ControlServiceStub(channel)
    finally:
        channel.close()
        assert proc.stop() == 0, proc.output()


def _solve(stub: Any, problem: Any, **kw: str) -> dict[str, Any]:
    text = problem if isinstance(problem, str) else json.dumps(problem)
    return json.loads(stub.Solve(control_pb2.SolveRequest(problem_json=text, **kw), timeout=180).answer_json)


def _refused(stub: Any, problem: Any, **kw: str) -> str:
    with pytest.raises(grpc.RpcError) as info:
        _solve(stub, problem, **kw)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    return str(info.value.details())


def test_grpc_solves_the_multi_device_example(stub) -> None:
    answer = _solve(stub, MULTI)
    _check_answer(answer, MULTI)
    assert len(answer["devices"]) == 4 and answer["search"]["evaluated"] >= 1
    fair = _solve(stub, dict(MULTI, fairness="max-min"), solver="exact", scheme="joint")
    _check_answer(fair, MULTI)
    assert fair["fairness"] == "max-min"


def test_grpc_gain_from_distance_and_one_device_form_unchanged(stub) -> None:
    prob = copy.deepcopy(MULTI)
    dev = prob["devices"][0]
    dev.pop("gain", None)
    dev.update(distance_m=50.0, k0_db=-30.0, alpha=3.0)
    assert _solve(stub, prob)["status"] in ("optimal", "infeasible")
    one = _solve(stub, ONE)
    assert one["status"] == "optimal" and "devices" not in one and one["split"] is not None


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p["devices"][1]["budget"].update(energy_j=0), "devices.1.budget.energy_j"),
        (lambda p: p["devices"][0].pop("p_max_w"), "devices.0.p_max_w"),
        (lambda p: p.update(fairness="nash"), "fairness"),
        (lambda p: p["link"].update(bandwidth_hz=-1), "link.bandwidth_hz"),
        (lambda p: p["devices"][1].update(id=p["devices"][0]["id"]), "device ids must be unique"),
        (lambda p: p.update(devices=[]), "devices"),
        (lambda p: p.update(extra_field=1), "extra_field"),
    ],
)
def test_grpc_rejects_bad_multi_input_naming_the_field(stub, mutate, field) -> None:
    bad = copy.deepcopy(MULTI)
    mutate(bad)
    assert field in _refused(stub, bad)


def test_grpc_multi_solver_and_scheme_are_exact_joint(stub) -> None:
    assert "solver" in _refused(stub, MULTI, solver="sca")
    assert "scheme" in _refused(stub, MULTI, scheme="fixed-power")
    assert _refused(stub, "{not json")  # neither form: the one-device validation names the problem


def test_grpc_multi_split_count_is_bounded(stub) -> None:
    many = copy.deepcopy(MULTI)
    paper = json.loads((ROOT / "examples" / "paper.json").read_text())["splits"]
    # more candidate splits than the controller's max_splits (20 here) are refused by name
    many["devices"][0]["splits"] = [dict(paper[0], split=i) for i in range(30)]
    details = _refused(stub, many)
    assert details.startswith("devices.0.splits: 30 candidate splits") and "max_splits" in details, details
