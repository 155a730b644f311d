"""Predicted (paper eqs. 4-11 with the plan's knobs) vs measured end-to-end latency, emulated clocks.

Five plans are pinned through the controller; the agent and the server stretch
compute to their emulated profiles and the uplink is paced at r(p). The median
measured end-to-end latency of each plan must be within 15 % of the plan's
prediction. The agent runs at the sequence length the server profiles at
(128), since achieved FLOP/s depends on the matrix sizes.
"""

from __future__ import annotations

import asyncio
import statistics

import httpx
import pytest

from device_agent.node import DeviceNode
from device_agent.runner import DeviceRunner
from device_agent.settings import AgentSettings
from splitbed.control_client import ControlClient
from splitbed.v1 import control_pb2
from tests.launch import start, start_controller

TEXTS = ["Beautiful is better than ugly.", "Readability counts.", "Errors should never pass silently."]
PLANS = [
    {"split": 1, "power_w": 0.2},
    {"split": 2, "rho_device": 0.7, "power_w": 0.05},
    {"split": 3, "power_w": 0.5},
    {"split": 4, "rho_server": 0.6, "power_w": 0.1},
    {"split": 5, "freq_device_hz": 6e8, "power_w": 0.3},
]


@pytest.fixture(scope="module")
def system():
    controller = start_controller(["--latency-budget-s", "2", "--energy-budget-j", "2"])
    try:
        edge = start("edge_server", ["serve", "--host", "127.0.0.1", "--controller", controller.address,
                                     "--clock", "emulated", "--clock-profile", "edge-cpu", "--node-id", "edge-p"],
                     threads=2)
    except BaseException:
        controller.stop()
        raise
    yield controller, edge
    edge.stop()
    controller.stop()


def test_predicted_latency_matches_measured_across_plans(system):
    controller, edge = system
    url = controller.rest_url

    async def scenario():
        runner = DeviceRunner(AgentSettings(server=edge.address, clock="emulated", clock_profile="paper-device",
                                            seq_len=128, encoding="fp16", warmup=0, node_id="dev-p"))
        await runner.connect(standalone=False)
        node = DeviceNode.of(runner)
        link = ControlClient(controller.address, "dev-p", control_pb2.ROLE_DEVICE, node)
        link.start()
        await asyncio.wait_for(link.first_config.wait(), 120)
        prepared = runner.prepare(TEXTS)
        results = []
        async with httpx.AsyncClient(timeout=120) as client:
            for pins in PLANS:
                r = await client.put(f"{url}/v1/pins", json=pins)
                assert r.status_code == 200, r.text
                plan = r.json()
                for _ in range(200):
                    if link.version == plan["version"]:
                        break
                    await asyncio.sleep(0.05)
                assert link.version == plan["version"]
                for i in range(2):  # the first runs of freshly loaded parts are slower
                    await runner.infer_one(prepared[i], f"settle-{i}")
                recs = [(await runner.infer_one(prepared[i % 3], f"p{plan['version']}-{i}")).to_dict()
                        for i in range(10)]
                assert {r["config_version"] for r in recs} == {plan["version"]}
                measured = statistics.median(r["timings"]["e2e_s"] for r in recs)
                stages = {k: statistics.median(r["timings"][k] for r in recs) for k in recs[0]["timings"]}
                results.append((pins, plan["config"]["predicted"], measured, {**recs[0], "stages": stages}))
        await link.close()
        await runner.close()
        return results

    results = asyncio.run(scenario())
    report = []
    for pins, predicted, measured, rec in results:
        err = (measured - predicted["latency_s"]) / predicted["latency_s"]
        st = rec["stages"]
        report.append(
            f"{pins}: predicted {predicted['latency_s'] * 1e3:.1f} ms, measured {measured * 1e3:.1f} ms, "
            f"error {err:+.1%} (device {predicted['t_device_s'] * 1e3:.1f}/{st['device_compute_s'] * 1e3:.1f}, "
            f"upload {predicted['t_upload_s'] * 1e3:.1f}/{st['upload_pacing_s'] * 1e3:.1f}, "
            f"server {predicted['t_server_s'] * 1e3:.1f}/{st['server_compute_s'] * 1e3:.1f} ms predicted/measured)")
        assert rec["predicted"]["source"].startswith("modelled")
        assert rec["energy"]["device_source"].startswith("modelled")
        assert rec["energy"]["upload_source"] == "modelled:p*t_upload"
    print("\n".join(report))
    for line, (_, predicted, measured, _) in zip(report, results, strict=True):
        assert abs(measured - predicted["latency_s"]) <= 0.15 * predicted["latency_s"], line
