"""Split L = n is really on-device: the agent pools the embedding itself and uploads nothing.

The profile's payload at L = n is 0, so a plan pinned there has p = 0 and no
upload time or energy; the agent's records carry no payload, no server time and
an upload energy of 0 labelled "nothing uploaded", and the embedding equals the
unsplit model's.
"""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import torch

from device_agent.node import DeviceNode
from device_agent.on_device import NOTHING_UPLOADED
from device_agent.runner import DeviceRunner
from device_agent.settings import AgentSettings
from splitbed.control_client import ControlClient
from splitbed.model import load_full_model, resolve_model
from splitbed.side.profile import split_costs
from splitbed.v1 import control_pb2
from tests.launch import controller_and_edge, start_edge

TEXT = "Errors should never pass silently, unless explicitly silenced."


def test_profile_has_no_payload_at_the_last_split():
    src = resolve_model("minilm")
    costs = split_costs(src, 64, "fp16")
    assert [c.split for c in costs] == list(range(src.n_layers + 1))
    assert costs[-1].payload_bits == 0 and costs[-1].server_flops == 0
    assert all(c.payload_bits == 8 * 2 * 64 * src.hidden_size for c in costs[:-1])


@pytest.fixture(scope="module")
def system():
    with controller_and_edge(["--latency-budget-s", "2", "--energy-budget-j", "2"],
                             lambda c: start_edge(3, extra=["--controller", c.address, "--node-id", "edge-ondev"])
                             ) as pair:
        yield pair


def test_plan_at_last_split_uploads_nothing(system):
    controller, edge = system
    src = resolve_model("minilm")
    n = src.n_layers

    async def scenario():
        runner = DeviceRunner(AgentSettings(server=edge.address, split=3, warmup=0, node_id="dev-ondev",
                                            encoding="fp32", power_w=0.2))
        await runner.connect(standalone=False)
        link = ControlClient(controller.address, "dev-ondev", control_pb2.ROLE_DEVICE, DeviceNode.of(runner))
        link.start()
        try:
            await asyncio.wait_for(link.first_config.wait(), 120)
            async with httpx.AsyncClient(timeout=120) as client:
                r = await client.put(f"{controller.rest_url}/v1/pins", json={"split": n, "power_w": 0.2})
                assert r.status_code == 200, r.text
                plan = r.json()
            for _ in range(400):
                if link.version == plan["version"]:
                    break
                await asyncio.sleep(0.05)
            assert runner.state.split == n
            inputs = runner.prepare([TEXT])[0]
            record = await runner.infer_one(inputs, "on-device")
            async with httpx.AsyncClient(timeout=120) as client:
                nodes = {n["node_id"]: n for n in (await client.get(f"{controller.rest_url}/v1/nodes")).json()}
            return plan, record, inputs, nodes["dev-ondev"]
        finally:
            await link.close()
            await runner.close()

    plan, record, inputs, node = asyncio.run(scenario())
    assert node["applied"]["power_w"] == 0.0 and node["applied_sources"]["power_w"] == NOTHING_UPLOADED
    config = plan["config"]
    assert config["knobs"]["split"] == n
    assert config["knobs"].get("power_w", 0.0) == 0.0
    assert config["predicted"].get("t_upload_s", 0.0) == 0.0 and config["predicted"].get("e_upload_j", 0.0) == 0.0
    assert record.split == n and record.payload_bytes == 0
    assert record.timings.upload_pacing_s == 0.0 and record.timings.server_compute_s == 0.0
    assert record.energy is not None
    assert record.energy.upload_j == 0.0 and record.energy.upload_source == NOTHING_UPLOADED
    with torch.inference_mode():
        ref = load_full_model(src)(inputs["input_ids"], inputs["attention_mask"], inputs.get("token_type_ids"))
    np.testing.assert_allclose(record.embedding, ref[0].numpy(), atol=1e-5)
