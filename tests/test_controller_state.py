"""Controller state survives restarts; plan changes are transactional; nodes expire, are bounded and deletable.

Real `controller serve` processes on free ports, restarted on the same state
file; nodes are played by gRPC clients (tests/fake_nodes.py).
"""

from __future__ import annotations

import time

import grpc
import httpx
import pytest

from splitbed.v1 import control_pb2, control_pb2_grpc
from tests.fake_nodes import Node, profile
from tests.launch import start_controller

BUDGET = ["--latency-budget-s", "0.3", "--energy-budget-j", "0.1"]


def _plan(proc) -> dict:
    return httpx.get(f"{proc.rest_url}/v1/plan", timeout=30).json()


def _pair(proc, **kw) -> tuple[Node, Node]:
    server = Node(proc.address, "edge-0", "server", **kw)
    device = Node(proc.address, "device-0", "device", **kw)
    return server, device


def test_restart_keeps_budget_pins_versions_and_nodes(tmp_path):
    state = ["--state", str(tmp_path / "state.sqlite")]
    proc = start_controller([*state, *BUDGET])
    server, device = _pair(proc)
    try:
        server.next(), device.next()
        assert httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.4, "energy_j": 0.2},
                         timeout=60).status_code == 200
        assert httpx.put(f"{proc.rest_url}/v1/pins", json={"split": 3}, timeout=60).status_code == 200
        before = _plan(proc)
    finally:
        server.close(), device.close()
        assert proc.stop() == 0, proc.output()
    assert before["version"] == 3 and before["pins"] == {"split": 3}

    proc = start_controller([*state, *BUDGET])
    try:
        after = _plan(proc)
        assert after["budget"] == {"latency_s": 0.4, "energy_j": 0.2}
        assert after["pins"] == {"split": 3}
        pins = httpx.get(f"{proc.rest_url}/v1/pins").json()
        assert pins == {"split": 3} and isinstance(pins["split"], int)  # as PUT /v1/pins takes it back
        assert after["version"] == 3 and after["status"] == "applied"
        assert [h["version"] for h in after["history"]] == [1, 2, 3]
        assert after["config"]["knobs"]["split"] == 3
        nodes = {n["node_id"]: n for n in httpx.get(f"{proc.rest_url}/v1/nodes").json()}
        assert set(nodes) == {"edge-0", "device-0"}
        assert nodes["edge-0"]["profile"]["n_splits"] == 7 and nodes["edge-0"]["applied_version"] == 3
        # Same profile, known version: re-attached without a new plan, a new version or a profiling round.
        server, device = _pair(proc, known_version=3)
        assert server.drain(3.0) == [] and device.drain(0.5) == []
        assert _plan(proc)["version"] == 3
        r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.5, "energy_j": 0.2}, timeout=60)
        assert r.status_code == 200 and r.json()["version"] == 4 and r.json()["pins"] == {"split": 3}
        server.close(), device.close()
    finally:
        assert proc.stop() == 0, proc.output()


def test_measured_fixed_cost_and_drifted_gain_survive_a_restart(tmp_path):
    """T_fix measured on requests, and a confirmed channel gain, arrive by telemetry after registration; a
    restarted controller plans with them (not with the probe's lower bound and the first estimate)."""
    state = ["--state", str(tmp_path / "state.sqlite")]
    proc = start_controller([*state, *BUDGET, "--drift-confirm", "1", "--drift-min-interval-s", "0"])
    server, device = _pair(proc)
    try:
        server.next(), device.next()
        gain = device.profile.link.gain * 0.5
        device.stub.ReportTelemetry(control_pb2.TelemetryReport(
            node_id="device-0", config_version=1, values={"fixed_latency_s": 0.0123, "gain": gain},
            sources={"fixed_latency_s": "measured: requests"}), timeout=10)
        server.next(), device.next()  # the drift re-plan
    finally:
        server.close(), device.close()
        assert proc.stop() == 0, proc.output()

    proc = start_controller([*state, *BUDGET])
    try:
        nodes = {n["node_id"]: n for n in httpx.get(f"{proc.rest_url}/v1/nodes", timeout=30).json()}
        dev = nodes["device-0"]["profile"]
        assert dev["fixed_latency_s"] == pytest.approx(0.0123)
        assert dev["fixed_latency_source"] == "measured: requests"
        assert dev["link"]["gain"] == pytest.approx(gain)
    finally:
        assert proc.stop() == 0, proc.output()


def test_failed_push_adopts_nothing(tmp_path):
    proc = start_controller([*BUDGET, "--ack-timeout-s", "20"])
    server, device = _pair(proc)
    try:
        server.next(), device.next()
        before = _plan(proc)
        server.fail = True
        r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.45, "energy_j": 0.2}, timeout=60)
        assert r.status_code == 409 and "out of memory" in r.json()["detail"]
        r = httpx.put(f"{proc.rest_url}/v1/pins", json={"split": 2}, timeout=60)
        assert r.status_code == 409
        after = _plan(proc)
        assert after["budget"] == before["budget"] and after["pins"] == before["pins"] == {}
        assert after["version"] == before["version"] == 1 and after["config"] == before["config"]
        assert after["issued_version"] == 3
        assert [h["status"] for h in after["history"]] == ["applied", "failed", "failed"]
        assert device.drain(1.0) == []  # devices never saw the failed versions
    finally:
        server.close(), device.close()
        proc.stop()


def test_server_that_never_acks_blocks_no_other_group(tmp_path):
    """A plan goes only to its own group's server: a silent server without devices is never waited for."""
    proc = start_controller([*BUDGET, "--ack-timeout-s", "3"])
    server, device = _pair(proc)
    dead = Node(proc.address, "edge-dead", "server", ack=False)
    try:
        server.next(), device.next(timeout=60)
        for latency in (0.4, 0.5):
            r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": latency, "energy_j": 0.1}, timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["budget"]["latency_s"] == latency
            assert "dropped" not in r.json()["history"][-1]
        nodes = {n["node_id"]: n for n in httpx.get(f"{proc.rest_url}/v1/nodes").json()}
        assert nodes["edge-dead"]["ack_error"] is None and nodes["edge-dead"]["group"] is None
        assert nodes["edge-0"]["applied_version"] == _plan(proc)["version"]
        assert nodes["device-0"]["group"] == "edge-0" and nodes["device-0"]["association"]["by"] == "default"
    finally:
        dead.close(), server.close(), device.close()
        proc.stop()


def test_silent_nodes_go_stale_and_can_be_deleted():
    proc = start_controller([*BUDGET, "--node-ttl-s", "1"])
    server = Node(proc.address, "edge-0", "server")
    device = Node(proc.address, "device-0", "device", watch=False)  # registers, then goes silent
    try:
        time.sleep(2.0)
        nodes = {n["node_id"]: n for n in httpx.get(f"{proc.rest_url}/v1/nodes").json()}
        assert nodes["device-0"]["stale"] and not nodes["edge-0"]["stale"]
        r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.4, "energy_j": 0.2}, timeout=60)
        assert r.status_code == 409 and "stale" in r.json()["detail"]
        assert httpx.delete(f"{proc.rest_url}/v1/nodes/device-0").status_code == 200
        assert httpx.delete(f"{proc.rest_url}/v1/nodes/device-0").status_code == 404
        assert httpx.delete(f"{proc.rest_url}/v1/nodes/bad%20id").status_code == 422
        assert httpx.delete(f"{proc.rest_url}/v1/nodes/edge-0").status_code == 200
        deadline = time.monotonic() + 30  # its config stream ends: it must register again
        while server.ended is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.ended == grpc.StatusCode.NOT_FOUND
        assert httpx.get(f"{proc.rest_url}/v1/nodes").json() == []
    finally:
        server.close(), device.close()
        proc.stop()


@pytest.mark.parametrize("node_id", ["x" * 65, "a/b", "", "-lead", "sp ace", "é"])
def test_bad_node_ids_are_refused(node_id):
    proc = start_controller()
    try:
        with grpc.insecure_channel(proc.address) as ch:
            stub = control_pb2_grpc.ControlServiceStub(ch)
            with pytest.raises(grpc.RpcError) as err:
                stub.Register(control_pb2.RegisterRequest(node_id=node_id, role=control_pb2.ROLE_SERVER,
                                                          profile=profile("server")), timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "node_id" in err.value.details()
    finally:
        proc.stop()


def test_registration_flood_is_bounded():
    proc = start_controller(["--max-nodes", "100", "--node-ttl-s", "600"])
    ok = refused = 0
    try:
        with grpc.insecure_channel(proc.address) as ch:
            register = control_pb2_grpc.ControlServiceStub(ch).Register
            futures = []
            t0 = time.monotonic()
            for i in range(10_000):
                if time.monotonic() - t0 > 10:
                    break
                futures.append(register.future(control_pb2.RegisterRequest(
                    node_id=f"flood-{i}", role=control_pb2.ROLE_SERVER, profile=profile("server")), timeout=60))
                if len(futures) >= 200:
                    for f in futures:
                        try:
                            f.result()
                            ok += 1
                        except grpc.RpcError as exc:
                            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                            refused += 1
                    futures = []
        kept = len(httpx.get(f"{proc.rest_url}/v1/nodes", timeout=60).json())
        print(f"flood: {ok} registered, {refused} refused, {kept} kept")
        assert ok == 100 and kept == 100 and refused > 0
    finally:
        proc.stop()


def test_full_registry_makes_room_by_dropping_stale_nodes():
    proc = start_controller(["--max-nodes", "2", "--node-ttl-s", "1"])
    try:
        a = Node(proc.address, "a", "server", watch=False)
        b = Node(proc.address, "b", "server")  # watching: never stale
        with pytest.raises(grpc.RpcError) as err:
            Node(proc.address, "c", "server", watch=False)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        time.sleep(1.5)
        c = Node(proc.address, "c", "server", watch=False)
        assert sorted(n["node_id"] for n in httpx.get(f"{proc.rest_url}/v1/nodes").json()) == ["b", "c"]
        a.close(), b.close(), c.close()
    finally:
        proc.stop()


def test_non_finite_reports_cannot_poison_the_views():
    proc = start_controller()
    server = Node(proc.address, "edge-0", "server")
    try:
        server.stub.ReportTelemetry(control_pb2.TelemetryReport(
            node_id="edge-0", values={"rss": float("nan"), "gain": float("inf"), "ok": 1.0}), timeout=10)
        server.stub.Ack(control_pb2.AckRequest(node_id="edge-0", version=1, ok=True,
                                               applied=control_pb2.Knobs(power_w=float("nan"))), timeout=10)
        r = httpx.get(f"{proc.rest_url}/v1/nodes", timeout=30)
        assert r.status_code == 200 and r.json()[0]["telemetry"] == {"ok": 1.0}
        assert "power_w" not in r.json()[0]["applied"]
    finally:
        server.close()
        proc.stop()
