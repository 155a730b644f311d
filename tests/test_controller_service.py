"""The controller as a real process: REST and gRPC, stateless solve, validation, health."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from splitbed.v1 import control_pb2, control_pb2_grpc
from tests.launch import ROOT, start_controller

EXAMPLE = json.loads((ROOT / "examples" / "one_split.json").read_text())
PAPER = json.loads((ROOT / "examples" / "paper.json").read_text())


@pytest.fixture(scope="module")
def controller():
    proc = start_controller()
    yield proc
    assert proc.stop() == 0, proc.output()


def test_rest_solve_one_split(controller):
    r = httpx.post(f"{controller.rest_url}/v1/solve", json=EXAMPLE, timeout=30)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "optimal"
    for key in ("split", "rho_device", "rho_server", "power_w", "freq_device_hz", "freq_server_hz", "latency_s",
                "energy_j", "log2_distortion_bound", "solve_time_s"):
        assert answer[key] is not None, key
    assert answer["latency_s"] <= EXAMPLE["budget"]["latency_s"] * (1 + 1e-6)
    assert answer["energy_j"] <= EXAMPLE["budget"]["energy_j"] * (1 + 1e-6)


def test_rest_solve_all_splits_with_scheme_and_sca(controller):
    r = httpx.post(f"{controller.rest_url}/v1/solve", json=PAPER, timeout=60)
    joint = r.json()
    assert r.status_code == 200 and joint["status"] == "optimal"
    assert len(joint["per_split"]) == len(PAPER["splits"])
    r = httpx.post(f"{controller.rest_url}/v1/solve", params={"scheme": "fixed-power"}, json=PAPER, timeout=60)
    fixed = r.json()
    assert fixed["power_w"] == pytest.approx(PAPER["link"]["p_max_w"])
    assert fixed["log2_distortion_bound"] >= joint["log2_distortion_bound"] - 1e-6
    r = httpx.post(f"{controller.rest_url}/v1/solve", params={"solver": "sca"}, json=EXAMPLE, timeout=60)
    assert r.status_code == 200 and r.json()["iterations"] >= 1


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p["budget"].update(latency_s=-1), "budget.latency_s"),
        (lambda p: p["link"].update(bandwidth_hz=0), "link.bandwidth_hz"),
        (lambda p: p["device"].pop("f_max_hz"), "device.f_max_hz"),
    ],
)
def test_rest_rejects_bad_problem_naming_the_field(controller, mutate, field):
    bad = json.loads(json.dumps(EXAMPLE))
    mutate(bad)
    r = httpx.post(f"{controller.rest_url}/v1/solve", json=bad, timeout=30)
    assert r.status_code == 422
    locs = [".".join(str(x) for x in e["loc"][1:]) for e in r.json()["detail"]]
    assert field in locs, r.json()


def test_rest_live_endpoints_without_nodes(controller):
    assert httpx.get(f"{controller.rest_url}/v1/nodes").json() == []
    plan = httpx.get(f"{controller.rest_url}/v1/plan").json()
    assert plan["version"] == 0 and plan["status"] == "none"
    r = httpx.put(f"{controller.rest_url}/v1/budget", json={"latency_s": 0.1, "energy_j": 0.01})
    assert r.status_code == 409 and "device agent" in r.json()["detail"]
    assert httpx.put(f"{controller.rest_url}/v1/budget", json={"latency_s": -1, "energy_j": 1}).status_code == 422
    assert httpx.get(f"{controller.rest_url}/openapi.json").json()["paths"]["/v1/solve"]


def test_grpc_solve_and_health(controller):
    with grpc.insecure_channel(controller.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = control_pb2_grpc.ControlServiceStub(channel)
        resp = stub.Solve(control_pb2.SolveRequest(problem_json=json.dumps(EXAMPLE), solver="exact"))
        assert json.loads(resp.answer_json)["status"] == "optimal"
        bad = json.loads(json.dumps(EXAMPLE))
        bad["link"]["bandwidth_hz"] = 0
        with pytest.raises(grpc.RpcError) as info:
            stub.Solve(control_pb2.SolveRequest(problem_json=json.dumps(bad)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "link.bandwidth_hz" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            stub.Register(control_pb2.RegisterRequest(node_id=""))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cli_talks_to_the_service(controller):
    import subprocess
    import sys

    from tests.launch import child_env

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "controller", *args, "--url", controller.rest_url],
                              capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=120)

    plan = cli("plan")
    assert plan.returncode == 0 and '"version": 0' in plan.stdout
    pinned = cli("pin", "split=3", "power_w=0.1")
    assert pinned.returncode == 1 and "device agent" in pinned.stdout  # no nodes registered: 409
    bad = subprocess.run([sys.executable, "-m", "controller", "pin", "volume=11"], capture_output=True, text=True,
                         env=child_env(), cwd=ROOT, timeout=120)
    assert bad.returncode != 0 and "KNOB=VALUE" in bad.stderr
