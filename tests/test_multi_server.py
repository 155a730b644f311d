"""Several edge servers under one controller: a group per server, planned jointly within and independently across.

Real `controller serve` processes on free ports; the edge servers and devices
are played by gRPC clients (tests/fake_nodes.py) that register, watch configs
and acknowledge them, so each test takes seconds. Devices name their server by
node id (the agent's --server-node) or by the address they send to (--server).
Checked: each server's group is planned from its own devices only; a budget
change, a device leaving, or a device or server going stale by TTL re-plans
only its own group (the other group's versions stay, and its server gets
nothing); registration order does not change the plans; a restarted
controller keeps every device's plan and version, re-plans nothing when the
nodes come back, and numbers the next plan after them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest

from controller.association import Association, associate, same_address
from controller.registry import Node as RegNode
from splitbed.v1 import control_pb2
from tests.fake_nodes import Node, profile
from tests.launch import Proc, start_controller

BUDGET = ["--latency-budget-s", "0.3", "--energy-budget-j", "0.1"]
ADDRESS = {"edge-a": "127.0.0.1:7001", "edge-b": "127.0.0.1:7002"}
# Device -> (how it names its server, device clock f_max): heterogeneous, so plans differ per device.
DEVICES: dict[str, tuple[dict[str, str], float]] = {
    "dev-a1": ({"server_node_id": "edge-a"}, 1.0e9),
    "dev-a2": ({"server_node_id": "edge-a"}, 0.6e9),
    "dev-b1": ({"server_address": "localhost:7002"}, 1.4e9),  # by address: loopback names are one host
}


def device_profile(dev: str) -> control_pb2.NodeProfile:
    names, f_max = DEVICES[dev]
    p = profile("device")
    p.compute.f_max_hz = f_max
    p.compute.clock_hz = f_max
    p.compute.achieved_flops_per_s = f_max * p.compute.flops_per_cycle
    for key, value in names.items():
        setattr(p, key, value)
    return p


def server(proc: Proc, sid: str, **kw: Any) -> Node:
    return Node(proc.address, sid, "server", serve_address=ADDRESS[sid], **kw)


def device(proc: Proc, dev: str, **kw: Any) -> Node:
    return Node(proc.address, dev, "device", node_profile=device_profile(dev), **kw)


def get(proc: Proc, path: str) -> Any:
    return httpx.get(f"{proc.rest_url}{path}", timeout=30).json()


def versions(proc: Proc) -> dict[str, dict[str, int]]:
    """Server -> device -> the version of the device's current plan."""
    return {g["server"]: {d: p["version"] for d, p in g["devices"].items()} for g in get(proc, "/v1/plan")["groups"]}


def until(check: Callable[[], Any], what: str, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Seen:
    """The newest config version each fake node has received (draining their queues)."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self.nodes = nodes
        self.latest = dict.fromkeys(nodes, 0)
        self.configs: dict[str, list[control_pb2.Config]] = {n: [] for n in nodes}

    def poll(self) -> dict[str, int]:
        for nid, node in self.nodes.items():
            while not node.configs.empty():
                config = node.configs.get_nowait()
                self.configs[nid].append(config)
                self.latest[nid] = max(self.latest[nid], config.version)
        return self.latest

    def settled(self, proc: Proc, groups: dict[str, set[str]]) -> dict[str, dict[str, int]]:
        """The groups' versions once they have these members and every device runs its plan."""
        def check() -> dict[str, dict[str, int]] | None:
            seen, now = self.poll(), versions(proc)
            if {s: set(d) for s, d in now.items()} != groups:
                return None
            ok = all(seen.get(d) == v for g in now.values() for d, v in g.items() if d in seen)
            return now if ok else None
        return until(check, f"groups {groups}")


EXPECTED = {"edge-a": {"dev-a1", "dev-a2"}, "edge-b": {"dev-b1"}}


def start_all(proc: Proc, order: list[str], **kw: Any) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    for nid in order:
        nodes[nid] = server(proc, nid, **kw) if nid.startswith("edge") else device(proc, nid, **kw)
    return nodes


def close(nodes: dict[str, Node]) -> None:
    for n in nodes.values():
        n.close()


def knobs(proc: Proc) -> dict[str, dict[str, float]]:
    return {d: p["config"]["knobs"] for g in get(proc, "/v1/plan")["groups"] for d, p in g["devices"].items()}


def _settled_in_order(order: list[str]) -> dict[str, dict[str, float]]:
    """Every device's knobs once the two groups are planned, nodes registered in `order`."""
    proc = start_controller(BUDGET)
    nodes = start_all(proc, order)
    try:
        Seen(nodes).settled(proc, EXPECTED)
        return knobs(proc)
    finally:
        close(nodes)
        proc.stop()


def test_two_servers_two_groups_each_planned_alone():
    proc = start_controller(BUDGET)
    nodes = start_all(proc, ["edge-a", "edge-b", "dev-a1", "dev-a2", "dev-b1"])
    seen = Seen(nodes)
    try:
        before = seen.settled(proc, EXPECTED)
        plan = get(proc, "/v1/plan")
        assert plan["unassigned"] == {} and [g["server"] for g in plan["groups"]] == ["edge-a", "edge-b"]
        group_a, group_b = plan["groups"]
        assert group_a["server_utilisation"] is not None and group_b["server_utilisation"] is None  # joint | P1
        for g in plan["groups"]:
            for d, p in g["devices"].items():
                assert p["config"]["device_id"] == d and p["status"] == "applied"
        # Each server was sent only its own group's versions; each device only its own.
        assert {c.device_id for c in seen.configs["edge-a"]} <= {"dev-a1", "dev-a2"}
        assert {c.device_id for c in seen.configs["edge-b"]} == {"dev-b1"}
        assert all(c.device_id == d for d in DEVICES for c in seen.configs[d])
        nodes_view = {n["node_id"]: n for n in get(proc, "/v1/nodes")}
        assert nodes_view["dev-a1"]["association"]["by"] == "node id"
        assert nodes_view["dev-b1"]["association"]["by"] == "address"
        assert nodes_view["dev-b1"]["group"] == "edge-b"
        assert nodes_view["dev-b1"]["plan_version"] == before["edge-b"]["dev-b1"]
        assert nodes_view["edge-a"]["group_devices"] == ["dev-a1", "dev-a2"]
        planned = knobs(proc)
        assert planned["dev-a1"] != planned["dev-a2"]  # heterogeneous devices, a plan each

        # A budget for one device re-plans its group only: edge-b's version stays, edge-b is sent nothing.
        r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.4, "energy_j": 0.1,
                                                          "device_id": "dev-a2"}, timeout=60)
        assert r.status_code == 200, r.text
        after = versions(proc)
        assert after["edge-b"] == before["edge-b"]
        assert all(after["edge-a"][d] > before["edge-a"][d] for d in ("dev-a1", "dev-a2"))
        seen.settled(proc, EXPECTED)
        assert [c.version for c in seen.configs["edge-b"]] == [before["edge-b"]["dev-b1"]]

        # A device deleted re-plans its group only.
        assert httpx.delete(f"{proc.rest_url}/v1/nodes/dev-a2", timeout=30).status_code == 200
        nodes.pop("dev-a2").close()
        final = seen.settled(proc, {"edge-a": {"dev-a1"}, "edge-b": {"dev-b1"}})
        assert final["edge-b"] == before["edge-b"] and final["edge-a"]["dev-a1"] > after["edge-a"]["dev-a1"]
        assert [c.version for c in seen.configs["edge-b"]] == [before["edge-b"]["dev-b1"]]
    finally:
        close(nodes)
        proc.stop()
    # Registration order does not matter: devices first, servers last and interleaved, the same plans.
    # (Equal within solver tolerance: a solve warm-started from another plan ends a few ulps elsewhere.)
    reordered = _settled_in_order(["dev-b1", "dev-a2", "edge-b", "dev-a1", "edge-a"])
    assert reordered.keys() == planned.keys()
    for d, k in planned.items():
        assert reordered[d] == pytest.approx(k, rel=1e-6), d


def test_stale_device_and_stale_server_change_only_their_own_group():
    proc = start_controller([*BUDGET, "--node-ttl-s", "1"])
    nodes = start_all(proc, ["edge-a", "edge-b", "dev-a1", "dev-a2", "dev-b1"])
    seen = Seen(nodes)
    try:
        before = seen.settled(proc, EXPECTED)
        nodes.pop("dev-a2").close()  # its config stream ends: stale one TTL later
        after = seen.settled(proc, {"edge-a": {"dev-a1"}, "edge-b": {"dev-b1"}})
        assert after["edge-b"] == before["edge-b"] and after["edge-a"]["dev-a1"] > before["edge-a"]["dev-a1"]
        assert [c.version for c in seen.configs["edge-b"]] == [before["edge-b"]["dev-b1"]]
        history = get(proc, "/v1/plan")["history"]
        assert history[-1]["reason"] == "dev-a2 went stale" and history[-1]["server"] == "edge-a"

        nodes.pop("edge-b").close()  # the server goes: its group is dropped, nothing else changes
        until(lambda: set(versions(proc)) == {"edge-a"}, "edge-b's group dropped")
        assert versions(proc) == {"edge-a": after["edge-a"]}
        plan = get(proc, "/v1/plan")
        assert "edge-b" in plan["unassigned"]["dev-b1"]  # it names edge-b (by address) and waits
        view = {n["node_id"]: n for n in get(proc, "/v1/nodes")}
        assert view["dev-b1"]["group"] is None and view["edge-b"]["stale"]
    finally:
        close(nodes)
        proc.stop()


def test_restart_restores_every_device_plan_and_versions_continue(tmp_path):
    state = ["--state", str(tmp_path / "state.sqlite")]
    proc = start_controller([*state, *BUDGET])
    order = ["edge-a", "edge-b", "dev-a1", "dev-a2", "dev-b1"]
    nodes = start_all(proc, order)
    seen = Seen(nodes)
    try:
        before = seen.settled(proc, EXPECTED)
        r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.35, "energy_j": 0.1,
                                                          "device_id": "dev-b1"}, timeout=60)
        assert r.status_code == 200, r.text
        before = seen.settled(proc, EXPECTED)
        plan_before = get(proc, "/v1/plan")
    finally:
        close(nodes)
        assert proc.stop() == 0, proc.output()
    held = dict(seen.latest)

    proc = start_controller([*state, *BUDGET])
    try:
        plan = get(proc, "/v1/plan")
        assert versions(proc) == before
        assert plan["device_budgets"] == {"dev-b1": {"latency_s": 0.35, "energy_j": 0.1}}
        assert plan["groups"] == plan_before["groups"] and plan["version"] == plan_before["version"]
        # The nodes come back holding their versions: nothing re-planned, nothing re-sent.
        nodes = {nid: (server(proc, nid, known_version=held[nid]) if nid.startswith("edge") else
                       device(proc, nid, known_version=held[nid])) for nid in order}
        seen = Seen(nodes)
        time.sleep(3.0)
        assert seen.poll() == dict.fromkeys(order, 0) and versions(proc) == before
        assert get(proc, "/v1/plan")["issued_version"] == plan_before["issued_version"]
        # The next plan continues the numbering, in its own group only.
        r = httpx.put(f"{proc.rest_url}/v1/budget", json={"latency_s": 0.3, "energy_j": 0.1,
                                                          "device_id": "dev-b1"}, timeout=60)
        assert r.status_code == 200, r.text
        after = versions(proc)
        assert after["edge-a"] == before["edge-a"]
        assert after["edge-b"]["dev-b1"] == plan_before["issued_version"] + 1
    finally:
        close(nodes)
        proc.stop()


@pytest.mark.parametrize(("a", "b", "same"), [
    ("127.0.0.1:50051", "localhost:50051", True),
    ("EDGE-0:50051", "edge-0:50051", True),
    ("edge-0.edge-headless.splitbed.svc.cluster.local:50051", "edge-0:50051", True),
    ("[::1]:7", "127.0.0.1:7", True),
    ("edge-0:50051", "edge-1:50051", False),
    ("edge-0:50051", "edge-0:50052", False),
    ("edge-0.a:1", "edge-0.b:1", False),
    ("", "edge-0:1", False),
])
def test_address_matching(a, b, same):
    assert same_address(a, b) is same and same_address(b, a) is same


def _node(nid: str, role: str, address: str = "", **names: str) -> RegNode:
    p = profile(role)
    for key, value in names.items():
        setattr(p, key, value)
    return RegNode(nid, role, address, p)


def test_association_rules_do_not_depend_on_order():
    a, b = _node("edge-a", "server", "10.0.0.1:50051"), _node("edge-b", "server", "edge-b:50051")
    named = _node("d1", "device", server_node_id="edge-b", server_address="10.0.0.1:50051")
    by_dns = _node("d2", "device", server_address="edge-b.edge-headless.ns.svc:50051")
    lost = _node("d3", "device", server_address="10.9.9.9:50051")
    old = _node("d4", "device")  # an agent that names nothing
    for servers in ([a, b], [b, a]):
        assert associate(named, servers, servers) == Association("edge-b", "node id")
        assert associate(by_dns, servers, servers) == Association("edge-b", "address")
        assert associate(lost, servers, servers).server is None  # several servers: never a guess
        assert associate(old, servers, servers) == Association("edge-a", "default")
    assert associate(lost, [a], [a]) == Association("edge-a", "default")  # one server: that one
    assert associate(named, [a], [a, b]).server is None  # its server is stale: it waits
    assert associate(by_dns, [a], [a, b]).server is None
    assert "stale" in associate(by_dns, [a], [a, b]).why


def test_bad_server_names_are_refused():
    proc = start_controller()
    try:
        for names in ({"server_node_id": "../etc"}, {"server_address": "x" * 300}):
            with pytest.raises(grpc.RpcError) as err:
                Node(proc.address, "dev-x", "device", node_profile=_node("d", "device", **names).profile)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "profile.server_" in err.value.details()
        assert get(proc, "/v1/nodes") == []
    finally:
        proc.stop()
