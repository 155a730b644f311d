"""The control protocol against a real controller, with nodes played by gRPC clients.

Checks the two-phase push (server first, then device), acks with applied
values, re-planning on channel-gain drift beyond the threshold (and not
within it), re-profiling on request, and a failed server apply.
"""

from __future__ import annotations

import queue
import threading
import time

import grpc
import httpx
import pytest

from splitbed.v1 import control_pb2, control_pb2_grpc
from tests.launch import start_controller

GAIN = 2.77e-11


def profile(role: str) -> control_pb2.NodeProfile:
    p = control_pb2.NodeProfile(model="minilm", n_layers=6, seq_len=64, encoding="fp16")
    for split in range(7):
        p.splits.add(split=split, device_flops=2.3e8 * split, server_flops=2.3e8 * (6 - split),
                     device_params=1.77e6 * split, server_params=1.77e6 * (6 - split), payload_bits=393216)
    p.compute.CopyFrom(control_pb2.ComputeProfile(
        achieved_flops_per_s=3.2e10 if role == "device" else 6.4e10, clock_hz=1e9 if role == "device" else 2e9,
        flops_per_cycle=32, f_max_hz=1e9 if role == "device" else 2e9, clock_backend="emulated", pue=1.0,
        power_coeff=5e-29))
    if role == "device":
        p.link.CopyFrom(control_pb2.LinkProfile(backend="pacer", bandwidth_hz=5e6, noise_psd_w_per_hz=2e-19,
                                                gain=GAIN, p_max_w=0.5))
    return p


class FakeNode:
    """Registers, watches configs on a thread and acks them (or fails them on demand)."""

    def __init__(self, address: str, node_id: str, role: int, fail: bool = False) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = control_pb2_grpc.ControlServiceStub(self.channel)
        self.node_id, self.role, self.fail = node_id, role, fail
        self.configs: queue.Queue[tuple[float, control_pb2.Config]] = queue.Queue()
        name = "device" if role == control_pb2.ROLE_DEVICE else "server"
        self.stub.Register(control_pb2.RegisterRequest(node_id=node_id, role=role, profile=profile(name)))
        self.stream = self.stub.WatchConfig(control_pb2.WatchConfigRequest(node_id=node_id))
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        try:
            for config in self.stream:
                self.configs.put((time.monotonic(), config))
                if config.reprofile:
                    self.stub.ReportTelemetry(control_pb2.TelemetryReport(node_id=self.node_id,
                                                                          profile=profile("device")))
                    continue
                self.stub.Ack(control_pb2.AckRequest(
                    node_id=self.node_id, version=config.version, ok=not self.fail,
                    error="out of memory" if self.fail else "", applied=config.knobs,
                    sources={"freq_device_hz": "emulated"}))
        except grpc.RpcError:
            pass

    def next(self, timeout: float = 60) -> tuple[float, control_pb2.Config]:
        return self.configs.get(timeout=timeout)

    def close(self) -> None:
        self.stream.cancel()
        self.channel.close()


@pytest.fixture
def controller():
    proc = start_controller(["--latency-budget-s", "0.3", "--energy-budget-j", "0.1", "--drift-threshold", "0.2",
                             "--ack-timeout-s", "10"])
    yield proc
    proc.stop()


def test_two_phase_push_drift_and_reprofile(controller):
    server = FakeNode(controller.address, "edge", control_pb2.ROLE_SERVER)
    device = FakeNode(controller.address, "dev", control_pb2.ROLE_DEVICE)
    try:
        t_server, first = server.next()
        t_device, first_dev = device.next()
        assert first.version == first_dev.version == 1 and first.reason == "nodes registered"
        assert t_server <= t_device, "the device got the plan before the server applied it"
        nodes = {n["node_id"]: n for n in httpx.get(f"{controller.rest_url}/v1/nodes").json()}
        assert nodes["dev"]["applied_version"] == 1
        assert nodes["dev"]["applied_sources"] == {"freq_device_hz": "emulated"}

        # 10 % drift: below the threshold, no new plan; nor one 50 % report alone (drift is confirmed over
        # --drift-confirm reports), nor reports from an older plan's window.
        for gain, version in ((0.9, 1), (0.9, 1), (0.5, 1), (0.5, 0)):
            device.stub.ReportTelemetry(control_pb2.TelemetryReport(node_id="dev", config_version=version,
                                                                    values={"gain": GAIN * gain}))
        with pytest.raises(queue.Empty):
            server.next(timeout=1.5)
        # 50 % drift confirmed: re-planned for the new gain and pushed.
        device.stub.ReportTelemetry(control_pb2.TelemetryReport(node_id="dev", config_version=1,
                                                                values={"gain": GAIN * 0.5}))
        _, drift = server.next()
        assert drift.version == 2 and drift.reason == "channel drift"
        assert device.next()[1].version == 2
        assert drift.predicted.rate_bps < first.predicted.rate_bps
        nodes = {n["node_id"]: n for n in httpx.get(f"{controller.rest_url}/v1/nodes").json()}
        assert nodes["dev"]["profile"]["link"]["gain"] == pytest.approx(GAIN * 0.5)

        # Re-profile on request.
        r = httpx.post(f"{controller.rest_url}/v1/nodes/dev/profile", timeout=30)
        assert r.status_code == 200 and r.json()["node_id"] == "dev"
        assert httpx.post(f"{controller.rest_url}/v1/nodes/nobody/profile").status_code == 404
    finally:
        server.close()
        device.close()


def test_failed_server_apply_keeps_devices_on_the_old_plan(controller):
    server = FakeNode(controller.address, "edge", control_pb2.ROLE_SERVER, fail=True)
    device = FakeNode(controller.address, "dev", control_pb2.ROLE_DEVICE)
    try:
        server.next()
        with pytest.raises(queue.Empty):
            device.next(timeout=2)
        plan = httpx.get(f"{controller.rest_url}/v1/plan").json()
        # A failed push adopts nothing: no current plan, the attempt is in the history.
        assert plan["status"] == "none" and plan["version"] == 0
        # (>= 1: the controller tries the changed group again after --push-retry-s, 5 s by default)
        assert plan["history"][-1]["status"] == "failed" and plan["issued_version"] >= 1
        assert "out of memory" in (plan["last_error"] or "")
    finally:
        server.close()
        device.close()


def test_a_changed_group_whose_push_failed_is_tried_again_until_it_lands():
    """No event comes after the failed push (no node joins, leaves or changes): the controller tries again
    on its own, with the wait doubling, until the server applies the plan; then it stops trying."""
    proc = start_controller(["--latency-budget-s", "0.3", "--energy-budget-j", "0.1", "--ack-timeout-s", "10",
                             "--push-retry-s", "1"])
    server = FakeNode(proc.address, "edge", control_pb2.ROLE_SERVER, fail=True)
    device = FakeNode(proc.address, "dev", control_pb2.ROLE_DEVICE)
    try:
        _, first = server.next()
        assert first.version == 1
        deadline = time.monotonic() + 30
        plan = httpx.get(f"{proc.rest_url}/v1/plan").json()
        while plan["history"][-1:] == [] and time.monotonic() < deadline:
            time.sleep(0.1)
            plan = httpx.get(f"{proc.rest_url}/v1/plan").json()
        assert plan["status"] == "none" and "retrying in 1 s" in (plan["last_error"] or ""), plan["last_error"]
        assert set(plan["push_retry_in_s"]) == {"edge"}
        _, second = server.next(timeout=60)
        assert second.version == 2 and second.reason == "retrying the push to the group of edge"
        server.fail = False  # the server recovers (from v2 or v3 on, as its ack thread sees it)
        _, landed = device.next(timeout=60)
        plan = httpx.get(f"{proc.rest_url}/v1/plan").json()
        assert plan["status"] == "applied" and plan["version"] == landed.version >= 2
        assert plan["push_retry_in_s"] == {} and plan["last_error"] is None
        statuses = [h["status"] for h in plan["history"]]
        assert statuses[0] == "failed" and statuses[-1] == "applied", statuses
        while server.next(timeout=10)[1].version < landed.version:  # the server saw every try
            pass
        with pytest.raises(queue.Empty):  # landed: no more tries
            server.next(timeout=3)
    finally:
        server.close()
        device.close()
        assert proc.stop() == 0, proc.output()
