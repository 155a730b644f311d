"""ControlClient against a real controller process: it keeps the last config while the controller is away,
reconnects when it is back, re-registers with the version it holds and applies the next plan."""

from __future__ import annotations

import asyncio

from splitbed.control_client import ControlClient
from splitbed.node_contract import Applied, Telemetry
from splitbed.v1 import control_pb2
from tests.launch import start, start_controller
from tests.test_controller_protocol import profile

CONTROLLER_ARGS = ["--latency-budget-s", "0.3", "--energy-budget-j", "0.1"]


class ScriptedNode:
    """A ControlledNode that applies every config as planned and remembers it."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.applied: list[control_pb2.Config] = []
        self.profiled = 0

    async def profile(self) -> control_pb2.NodeProfile:
        self.profiled += 1
        return profile(self.role)

    async def apply(self, config: control_pb2.Config) -> Applied:
        self.applied.append(config)
        return Applied(knobs=config.knobs, sources={"split": "applied"})

    def telemetry(self) -> Telemetry | None:
        return Telemetry({"requests": 1.0}, {"requests": "counted"})


async def _until(predicate, timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_reconnects_after_the_controller_goes_away_and_keeps_the_last_config():
    controller = start_controller(CONTROLLER_ARGS)
    port = controller.port

    async def scenario() -> None:
        nonlocal controller
        server, device = ScriptedNode("server"), ScriptedNode("device")
        clients = [ControlClient(controller.address, "edge-r", control_pb2.ROLE_SERVER, server,
                                 serve_address="127.0.0.1:1", telemetry_every_s=0.2, backoff_s=(0.1, 0.5)),
                   ControlClient(controller.address, "dev-r", control_pb2.ROLE_DEVICE, device,
                                 backoff_s=(0.1, 0.5))]
        for c in clients:
            c.start()
        try:
            await asyncio.wait_for(asyncio.gather(*(c.first_config.wait() for c in clients)), 120)
            first = clients[1].version
            assert first >= 1 and clients[0].version == first
            assert device.applied[-1].version == first

            await asyncio.to_thread(controller.stop)
            await asyncio.sleep(1.5)  # several failed reconnects and telemetry reports
            assert [c.version for c in clients] == [first, first]
            assert device.applied[-1].version == first and server.applied[-1].version == first
            await clients[1].report_telemetry()  # lost quietly while the controller is away, never raised
            profiled = device.profiled

            controller = await asyncio.to_thread(
                start, "controller", ["serve", "--host", "127.0.0.1", *CONTROLLER_ARGS],
                port_flags=("--grpc-port", str(port), "--rest-port", "0"))
            await _until(lambda: all(c.version > first for c in clients), 120, "the plan of the new controller")
            # Re-registered with the profile it had measured (no new profiling round), and the new controller
            # numbered its plan after the held one.
            assert device.profiled == profiled
            assert device.applied[-1].version == clients[1].version > first
        finally:
            for c in clients:
                await c.close()

    try:
        asyncio.run(scenario())
    finally:
        controller.stop()
