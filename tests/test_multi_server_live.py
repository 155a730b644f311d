"""Two real edge servers and two real agents under one controller: each agent is planned in its own server's group.

The agents (in-process `DeviceRunner`s with the real `DeviceNode`, emulated
clocks) name their server two ways: `dev-1` by the address it sends to
(`--server`, the address `edge-1` registered), `dev-2` by node id
(`--server-node edge-2`). Each edge server is pushed only its own group's
version and serves it; each agent's requests run on its plan's version at its
own server. Deleting `dev-2` drops `edge-2`'s group and leaves `edge-1`'s
plan and version alone. No timing is asserted (tests/test_live_multi.py does
the prediction check for one server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from device_agent.node import DeviceNode
from device_agent.runner import DeviceRunner
from device_agent.settings import AgentSettings
from splitbed.control_client import ControlClient
from splitbed.v1 import control_pb2
from tests.launch import Proc, start, start_controller


def _edge(controller: Proc, node_id: str) -> Proc:
    return start("edge_server", ["serve", "--host", "127.0.0.1", "--controller", controller.address, "--clock",
                                 "emulated", "--clock-profile", "paper-device", "--node-id", node_id,
                                 "--profile-seq-len", "32", "--profile-seq-lens", "32"])


@pytest.fixture(scope="module")
def system() -> Iterator[tuple[Proc, dict[str, Proc]]]:
    controller = start_controller(["--latency-budget-s", "0.3", "--energy-budget-j", "2"])
    edges: dict[str, Proc] = {}
    try:
        for node_id in ("edge-1", "edge-2"):
            edges[node_id] = _edge(controller, node_id)
        yield controller, edges
    finally:
        for e in edges.values():
            e.stop()
        controller.stop()


async def _agent(controller: Proc, edge: Proc, node_id: str, **names: str) -> tuple[DeviceRunner, ControlClient]:
    runner = DeviceRunner(AgentSettings(server=edge.address, clock="emulated", clock_profile="raspberry-pi-4",
                                        seq_len=32, encoding="fp16", warmup=0, node_id=node_id, **names))
    await runner.connect(standalone=False)
    link = ControlClient(controller.address, node_id, control_pb2.ROLE_DEVICE, DeviceNode.of(runner))
    link.start()
    return runner, link


async def _groups(client: httpx.AsyncClient, url: str) -> dict[str, dict[str, int]]:
    plan = (await client.get(f"{url}/v1/plan")).json()
    return {g["server"]: {d: p["version"] for d, p in g["devices"].items()} for g in plan["groups"]}


async def _scenario(controller: Proc, edges: dict[str, Proc]) -> None:
    agents = {"dev-1": await _agent(controller, edges["edge-1"], "dev-1"),
              "dev-2": await _agent(controller, edges["edge-2"], "dev-2", server_node="edge-2")}
    url = controller.rest_url
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            for _ in range(1800):
                groups = await _groups(client, url)
                if groups == {"edge-1": {"dev-1": agents["dev-1"][1].version},
                              "edge-2": {"dev-2": agents["dev-2"][1].version}}:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"groups never settled: {groups}")
            nodes = {n["node_id"]: n for n in (await client.get(f"{url}/v1/nodes")).json()}
            assert nodes["dev-1"]["association"]["by"] == "address"
            assert nodes["dev-2"]["association"]["by"] == "node id"
            assert nodes["dev-2"]["profile"]["server_node_id"] == "edge-2"
            for dev, edge in (("dev-1", "edge-1"), ("dev-2", "edge-2")):
                runner, link = agents[dev]
                rec = await runner.infer_one(runner.prepare(["Readability counts."])[0], f"{dev}-0")
                assert rec.config_version == link.version == groups[edge][dev]
                served = {p.identity.config_version for p in (await runner.client.info()).parts}
                assert served == {groups[edge][dev]}, (edge, served)  # only its own group's version
            await agents["dev-2"][1].close()
            assert (await client.delete(f"{url}/v1/nodes/dev-2")).status_code == 200
            for _ in range(300):
                if set(await _groups(client, url)) == {"edge-1"}:
                    break
                await asyncio.sleep(0.1)
            assert await _groups(client, url) == {"edge-1": groups["edge-1"]}
            assert nodes["edge-1"]["applied_version"] == groups["edge-1"]["dev-1"]
    finally:
        for runner, link in agents.values():
            await link.close()
            await runner.close()


def test_two_edge_servers_two_groups(system: Any) -> None:
    controller, edges = system
    asyncio.run(_scenario(controller, edges))
