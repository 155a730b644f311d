"""Applying a config: any exception becomes a failed ack carrying its message; tc/iw time-outs are domain errors."""

from __future__ import annotations

import asyncio
import stat

import pytest
from grpc import aio

from splitbed.control_client import ControlClient
from splitbed.errors import Unavailable
from splitbed.hw.commands import run_command
from splitbed.hw.link_iw import IwLink
from splitbed.hw.link_tbf import TbfLink
from splitbed.node_contract import Applied, Telemetry
from splitbed.v1 import control_pb2, control_pb2_grpc


class FailingNode:
    """A node whose every apply raises `error` (a ControlledNode)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def profile(self) -> control_pb2.NodeProfile:
        return control_pb2.NodeProfile(model="minilm")

    async def apply(self, config: control_pb2.Config) -> Applied:
        raise self.error

    def telemetry(self) -> Telemetry | None:
        return None


class OneConfigController(control_pb2_grpc.ControlServiceServicer):
    """A controller that pushes one config and records the acks (a real gRPC server on a free port)."""

    def __init__(self) -> None:
        self.acks: asyncio.Queue[control_pb2.AckRequest] = asyncio.Queue()

    async def Register(self, request, context):  # noqa: N802
        return control_pb2.RegisterResponse(node_id=request.node_id)

    async def WatchConfig(self, request, context):  # noqa: N802
        yield control_pb2.Config(version=1, knobs=control_pb2.Knobs(split=2, rho_server=1.0))
        await asyncio.sleep(3600)

    async def Ack(self, request, context):  # noqa: N802
        await self.acks.put(request)
        return control_pb2.AckResponse()

    async def ReportTelemetry(self, request, context):  # noqa: N802
        return control_pb2.TelemetryAck()


@pytest.mark.parametrize("error", [RuntimeError("CUDA out of memory"), Unavailable("`tc qdisc` did not finish")])
async def test_any_apply_exception_is_a_failed_ack_with_its_message(error):
    controller = OneConfigController()
    server = aio.server()
    control_pb2_grpc.add_ControlServiceServicer_to_server(controller, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    link = ControlClient(f"127.0.0.1:{port}", "edge-x", control_pb2.ROLE_SERVER, FailingNode(error))
    link.start()
    try:
        ack = await asyncio.wait_for(controller.acks.get(), 20)
    finally:
        await link.close()
        await server.stop(0)
    assert not ack.ok and ack.version == 1
    assert type(error).__name__ in ack.error and str(error) in ack.error
    assert link.version == 0  # nothing adopted


@pytest.fixture
def slow_tool(tmp_path):
    tool = tmp_path / "slow-tool"
    tool.write_text("#!/bin/sh\nsleep 5\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return str(tool)


def test_tc_time_out_is_unavailable(slow_tool):
    link = TbfLink("eth-x", runner=lambda args: run_command(args, timeout_s=0.3), tc=slow_tool)
    with pytest.raises(Unavailable, match=r"did not finish within 0\.3 s"):
        link.set_rate_bps(1e6)


def test_iw_time_out_is_unavailable(slow_tool):
    link = IwLink("wlan-x", runner=lambda args: run_command(args, timeout_s=0.3), iw=slow_tool)
    with pytest.raises(Unavailable, match=r"did not finish within 0\.3 s"):
        link.apply(0.1, bandwidth_hz=5e6, noise_psd=2e-19, gain=1e-7)
