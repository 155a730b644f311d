"""Controller + edge server + device agent: plans pushed live, versions never mixed, nothing lost."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from device_agent.node import DeviceNode
from device_agent.runner import DeviceRunner
from device_agent.settings import AgentSettings
from splitbed.control_client import ControlClient
from splitbed.v1 import control_pb2
from tests.launch import controller_and_edge, start_edge

TEXTS = ["Beautiful is better than ugly.", "Explicit is better than implicit.", "Simple is better than complex.",
         "Heap queue algorithm (a.k.a. priority queue).", "Text wrapping and filling."]


@pytest.fixture(scope="module")
def system():
    args = ["--latency-budget-s", "0.5", "--energy-budget-j", "1.0", "--rho-min-device", "0.5",
            "--rho-min-server", "0.5"]
    with controller_and_edge(args, lambda c: start_edge(3, extra=["--controller", c.address, "--node-id",
                                                                   "edge-test"])) as pair:
        yield pair


async def _agent(controller, edge) -> tuple[DeviceRunner, ControlClient]:
    runner = DeviceRunner(AgentSettings(server=edge.address, split=3, warmup=0, node_id="dev-test"))
    await runner.connect(standalone=False)
    node = DeviceNode.of(runner)
    link = ControlClient(controller.address, "dev-test", control_pb2.ROLE_DEVICE, node)
    link.start()
    await asyncio.wait_for(link.first_config.wait(), 120)
    return runner, link


async def _put(url: str, path: str, body: dict) -> httpx.Response:
    async with httpx.AsyncClient(timeout=120) as client:
        return await client.put(url + path, json=body)


def test_switch_mid_stream_loses_nothing_and_mixes_no_versions(system):
    controller, edge = system

    async def scenario():
        runner, link = await _agent(controller, edge)
        first = link.version
        prepared = runner.prepare(TEXTS)
        sent: list[tuple[int, float, int]] = []  # (version, rho_server) claimed by each request
        records = []
        switch = None
        for i in range(500):
            if i == 250:
                # A different split and server ratio, pushed while requests keep flowing.
                switch = asyncio.create_task(_put(controller.rest_url, "/v1/pins", {"split": 1, "rho_server": 0.6}))
            state = runner.state
            sent.append((state.version, state.rho_server, state.split))
            records.append((await runner.infer_one(prepared[i % len(prepared)], f"r{i}")).to_dict())
            if switch is not None and not switch.done():
                await asyncio.sleep(0)
        assert switch is not None
        resp = await switch
        assert resp.status_code == 200, resp.text
        await link.close()
        await runner.close()
        return first, sent, records, resp.json()

    first, sent, records, plan = asyncio.run(scenario())
    assert len(records) == 500
    versions = [r["config_version"] for r in records]
    # Every request was served by exactly the version (split, ratio) it was made for.
    for (version, rho_server, split), rec in zip(sent, records, strict=True):
        assert rec["config_version"] == version
        assert rec["split"] == split
        assert rec["rho_server"] == pytest.approx(rho_server)
    assert versions == sorted(versions), "versions went backwards"
    new = plan["version"]
    assert new > first and versions[0] == first and versions[-1] == new
    assert plan["config"]["knobs"]["split"] == 1 and plan["config"]["knobs"]["rho_server"] == pytest.approx(0.6)
    late = [r for r in records if r["config_version"] == new]
    assert late and all(r["split"] == 1 and r["rho_server"] == pytest.approx(0.6) for r in late)


def test_nodes_budget_pins_and_controller_loss(system):
    controller, edge = system
    url = controller.rest_url

    async def scenario():
        runner, link = await _agent(controller, edge)
        prepared = runner.prepare(TEXTS)
        nodes = httpx.get(f"{url}/v1/nodes").json()
        roles = {n["node_id"]: n for n in nodes}
        assert roles["dev-test"]["role"] == "device" and roles["edge-test"]["role"] == "server"
        assert roles["dev-test"]["profile"]["n_splits"] == 7
        assert roles["edge-test"]["applied_version"] == httpx.get(f"{url}/v1/plan").json()["version"]

        # Unpin: back to the optimum; then a budget change re-plans and is applied live.
        r = await asyncio.to_thread(httpx.delete, f"{url}/v1/pins", timeout=120)
        assert r.status_code == 200 and r.json()["pins"] == {}
        before = r.json()["version"]
        r = await _put(url, "/v1/budget", {"latency_s": 0.3, "energy_j": 0.5})
        assert r.status_code == 200, r.text
        plan = r.json()
        assert plan["version"] == before + 1 and plan["budget"] == {"latency_s": 0.3, "energy_j": 0.5}
        for _ in range(100):
            if link.version == plan["version"]:
                break
            await asyncio.sleep(0.05)
        rec = await runner.infer_one(prepared[0], "after-budget")
        assert rec.config_version == plan["version"]

        # An infeasible budget keeps the plan and says what would be feasible.
        r = await _put(url, "/v1/budget", {"latency_s": 1e-6, "energy_j": 0.5})
        assert r.status_code == 409
        assert r.json()["answer"]["status"] == "infeasible"
        assert httpx.get(f"{url}/v1/plan").json()["version"] == plan["version"]

        # The controller goes away: both sides keep their last config and keep serving.
        controller.stop()
        for i in range(20):
            rec = await runner.infer_one(prepared[i % len(prepared)], f"orphan-{i}")
            assert rec.config_version == plan["version"]
        await link.close()
        await runner.close()

    asyncio.run(scenario())
    random.seed(0)
