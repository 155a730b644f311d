"""Root-only: edge server and controller in one network namespace, the device agent in another, joined by a
veth pair whose device end is shaped by the agent's ``tbf`` link backend. Three transmit powers are pinned
live through the controller's REST API; the agent's measured upload throughput must track r(p) within 10 %.

The agent runs in-process (DeviceRunner + DeviceNode + ControlClient, as the real agent does) in a small
driver started in the device namespace (``python -m tests.test_netns_tbf``), so the test can tell it when
to measure: after each pin change it waits for that plan's version, sends one untimed request, then
``REQUESTS`` timed ones, and prints their records as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from splitbed.channel import gain_from_distance, power_for_rate, rate_bps
from splitbed.hw.link_tbf import TbfLink
from tests.launch import ROOT, child_env
from tests.netns import (
    NetnsUnavailable,
    NsProc,
    VethPair,
    missing_prerequisite,
    ns_command,
    ns_http,
    start_in_ns,
    tbf_rate_bps,
    veth_namespaces,
)

logger = logging.getLogger(__name__)

SPLIT = 3
SEQ_LEN = 128
REQUESTS = 4  # timed uploads per power
TARGET_RATES_BPS = (2e6, 5e6, 10e6)  # fp32 seq 128 (1.57 Mbit): 0.79, 0.31, 0.16 s per upload
TOLERANCE = 0.10
TELEMETRY_EVERY = 3  # requests per telemetry report (each carries a rate and gain estimate)
# Seconds of static channel before the step; NETNS_STATIC_S=300 measures the five quiet minutes.
STATIC_S = float(os.environ.get("NETNS_STATIC_S", "12"))
TEXT = "Heap queue algorithm (a.k.a. priority queue)."


def _channel() -> tuple[float, float, float]:
    """(B, N0, g) of an agent left at its default link settings, as the driver runs it."""
    from device_agent.settings import AgentSettings

    s = AgentSettings.model_validate({})
    return s.bandwidth_hz, s.noise_psd_w_per_hz, gain_from_distance(s.distance_m, s.k0_db, s.path_loss_exponent)


# ---- the driver: runs in the device namespace ---------------------------------------------------------------


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def _drive(server: str, controller: str, dev: str) -> None:
    from device_agent.node import DeviceNode
    from device_agent.runner import DeviceRunner
    from device_agent.settings import AgentSettings
    from splitbed.control_client import ControlClient
    from splitbed.v1 import control_pb2

    settings = AgentSettings.model_validate({
        "server": server, "controller": controller, "link": "tbf", "link_dev": dev, "split": SPLIT,
        "seq_len": SEQ_LEN, "encoding": "fp32", "warmup": 0, "node_id": "dev-netns", "threads": 1,
        "telemetry_every": TELEMETRY_EVERY,
    })
    runner = DeviceRunner(settings)
    link: ControlClient | None = None
    try:
        await runner.connect(standalone=False)
        node = DeviceNode.of(runner)
        link = ControlClient(controller, settings.node_id, control_pb2.ROLE_DEVICE, node)
        link.start()
        await asyncio.wait_for(link.first_config.wait(), 150)
        inputs = runner.prepare([TEXT])[0]
        _emit({"event": "ready", "version": link.version})
        while line := (await asyncio.to_thread(sys.stdin.readline)).split():
            if line[0] == "quit":
                break
            if line[0] == "stream":
                await _stream(runner, node, link, inputs, float(line[1]))
                continue
            version, n = int(line[1]), int(line[2])
            deadline = time.monotonic() + 60
            while runner.state.version < version and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            # Untimed: the first request after a switch may still see the old qdisc's backlog drained.
            await runner.infer_one(inputs, f"settle-{version}")
            records = [(await runner.infer_one(inputs, f"v{version}-{i}")).to_dict() for i in range(n)]
            _emit({
                "event": "measured", "version": runner.state.version, "power_w": runner.state.power_w,
                "applied_rate_bps": node.uplink.applied_rate_bps,
                "records": [{"config_version": r["config_version"], "payload_bytes": r["payload_bytes"],
                             "timings": r["timings"], "energy": r.get("energy", {})} for r in records],
            })
    finally:
        if link is not None:
            await link.close()
        await runner.close()


async def _stream(runner: Any, node: Any, link: Any, inputs: Any, seconds: float) -> None:
    """Requests back to back for `seconds`, telemetry reported as the agent app reports it."""
    versions, gains = set(), []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        record = await runner.infer_one(inputs, f"s{n}")
        n += 1
        versions.add(record.config_version)
        node.observe(record)
        telemetry = node.telemetry()
        if telemetry is not None:
            gains.append(telemetry.values.get("gain"))
            await link.report(telemetry.values, telemetry.sources)
    _emit({"event": "streamed", "requests": n, "versions": sorted(versions), "gains": gains})


# ---- the test ----------------------------------------------------------------------------------------------


class Driver:
    """The driver process and a reader thread turning its stdout into JSON events."""

    def __init__(self, pair: VethPair, server: str, controller: str, workdir: Path) -> None:
        self.log = workdir / "driver.log"
        cmd = ns_command(pair.dev_ns, [sys.executable, "-m", "tests.test_netns_tbf", server, controller,
                                       pair.dev_if])
        self.popen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self.log.open("wb"), env=child_env(), cwd=ROOT, text=True)
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                logger.info("driver: %s", line.rstrip())
        self.events.put(None)

    def next_event(self, timeout: float) -> dict[str, Any]:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"driver silent for {timeout:.0f} s:\n{self.output()}") from None
        if event is None:
            raise AssertionError(f"driver exited ({self.popen.wait(15)}):\n{self.output()}")
        return event

    def send(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                self.send("quit")
                self.popen.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.popen.kill()
                self.popen.wait(15)


@pytest.fixture
def pair():
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    try:
        with veth_namespaces() as created:
            yield created
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))


def _goodput_bps(record: dict[str, Any]) -> float:
    return 8 * record["payload_bytes"] / record["timings"]["transfer_s"]


def _controlled_system(pair: VethPair, tmp_path: Path, procs: list[NsProc]) -> tuple[str, Driver]:
    """Controller and edge server in the edge namespace, the agent driver in the device one: (REST URL, driver).
    Each controller keeps its own state file (tests.launch.child_env sets CONTROLLER_STATE)."""
    controller = start_in_ns(
        pair.edge_ns, "controller",
        ["serve", "--host", pair.edge_addr, "--latency-budget-s", "5", "--energy-budget-j", "5"],
        tmp_path, port_flags=("--grpc-port", "0", "--rest-port", "0"))
    procs.append(controller)
    ctrl_addr = f"{pair.edge_addr}:{controller.ports[0]}"
    edge = start_in_ns(pair.edge_ns, "edge_server",
                       ["serve", "--host", pair.edge_addr, "--split", str(SPLIT), "--controller", ctrl_addr,
                        "--node-id", "edge-netns"], tmp_path)
    procs.append(edge)
    return f"http://{pair.edge_addr}:{controller.ports[1]}", Driver(pair, f"{pair.edge_addr}:{edge.ports[0]}",
                                                                     ctrl_addr, tmp_path)


@pytest.mark.root
@pytest.mark.slow
def test_upload_throughput_tracks_pinned_power_over_tbf_veth(pair: VethPair, tmp_path: Path) -> None:
    bandwidth, noise, gain = _channel()
    powers = [power_for_rate(r, bandwidth, noise, gain) for r in TARGET_RATES_BPS]
    procs: list[NsProc] = []
    driver: Driver | None = None
    try:
        rest, driver = _controlled_system(pair, tmp_path, procs)
        ready = driver.next_event(240)
        assert ready["event"] == "ready" and ready["version"] >= 1

        results = []
        for power in powers:
            status, plan = ns_http(pair.edge_ns, "PUT", f"{rest}/v1/pins", {"power_w": power, "split": SPLIT})
            assert status == 200, plan
            knobs = plan["config"]["knobs"]
            assert knobs["power_w"] == pytest.approx(power) and knobs["split"] == SPLIT
            driver.send(f"measure {plan['version']} {REQUESTS}")
            got = driver.next_event(120)
            assert got["event"] == "measured" and got["version"] == plan["version"]
            assert got["power_w"] == pytest.approx(power)
            results.append((power, plan, got, tbf_rate_bps(pair.dev_ns, pair.dev_if)))

        status, nodes = ns_http(pair.edge_ns, "GET", f"{rest}/v1/nodes")
        assert status == 200
        device = next(n for n in nodes if n["node_id"] == "dev-netns")
        assert device["applied"]["power_w"] == pytest.approx(powers[-1])
        assert "tbf" in device["applied_sources"]["power_w"]
    finally:
        if driver is not None:
            driver.stop()
        for proc in reversed(procs):
            proc.stop()

    summary = []
    for power, plan, got, kernel_rate in results:
        model = rate_bps(power, bandwidth, noise, gain)
        # The kernel enforces exactly r(p) (integer bit/s, stored as bytes/s).
        assert kernel_rate == pytest.approx(model, rel=1e-3)
        assert got["applied_rate_bps"] == pytest.approx(model, rel=1e-3)
        records = got["records"]
        assert len(records) == REQUESTS
        assert all(r["config_version"] == plan["version"] for r in records)
        assert all(r["payload_bytes"] == 4 * 384 * SEQ_LEN for r in records)
        measured = statistics.median(_goodput_bps(r) for r in records)
        summary.append(f"p={power * 1e3:.2f} mW: r(p)={model / 1e6:.3f} Mbit/s, measured {measured / 1e6:.3f} "
                       f"({[round(_goodput_bps(r) / 1e6, 3) for r in records]})")
        # The plan predicted t_upload = theta / r(p); the uploads took about that long.
        assert plan["config"]["predicted"]["rate_bps"] == pytest.approx(model, rel=1e-3)
        assert measured == pytest.approx(model, rel=TOLERANCE), summary[-1]
    logger.info("tbf over veth, measured upload goodput vs r(p):\n  %s", "\n  ".join(summary))


def _drift_replans(rest: str, ns: str) -> list[dict[str, Any]]:
    status, plan = ns_http(ns, "GET", f"{rest}/v1/plan")
    assert status == 200, plan
    return [h for h in plan.get("history", []) if h["reason"] == "channel drift"]


@pytest.mark.root
@pytest.mark.slow
def test_channel_step_triggers_exactly_one_drift_replan(pair: VethPair, tmp_path: Path) -> None:
    """A static tbf channel re-plans nothing; the kernel's rate halved under the agent (the channel got worse)
    gives exactly one "channel drift" plan, within 10 s."""
    bandwidth, noise, gain = _channel()
    power = power_for_rate(8e6, bandwidth, noise, gain)
    procs: list[NsProc] = []
    driver: Driver | None = None
    try:
        rest, driver = _controlled_system(pair, tmp_path, procs)
        assert driver.next_event(240)["event"] == "ready"
        status, plan = ns_http(pair.edge_ns, "PUT", f"{rest}/v1/pins", {"power_w": power, "split": SPLIT})
        assert status == 200, plan
        driver.send(f"measure {plan['version']} 1")
        assert driver.next_event(120)["event"] == "measured"

        driver.send(f"stream {STATIC_S:g}")
        static = driver.next_event(STATIC_S + 120)
        assert static["versions"] == [plan["version"]], static
        assert _drift_replans(rest, pair.edge_ns) == [], static

        # The channel gets worse under the agent: the kernel now lets half r(p) through.
        # Queue sized as the agent's backend sizes it: a short one would drop uploads, not only slow them.
        shaped = tbf_rate_bps(pair.dev_ns, pair.dev_if)
        assert shaped is not None
        change = TbfLink(pair.dev_if).command("change", shaped / 2)
        subprocess.run(["tc", "-n", pair.dev_ns, *change[1:]], check=True, timeout=15)
        stepped = time.time()
        driver.send("stream 20")
        after = driver.next_event(120)
        drifts = _drift_replans(rest, pair.edge_ns)
        logger.info("static %g s: %d requests, gains %s; after the step %s; drift plans %s (%.1f s after the step)",
                    STATIC_S, static["requests"], static["gains"], after["gains"], drifts,
                    drifts[0]["at"] - stepped if drifts else float("nan"))
        assert len(drifts) == 1, (drifts, after)
        assert drifts[0]["at"] - stepped <= 10.0, (drifts, stepped)
    finally:
        if driver is not None:
            driver.stop()
        for proc in reversed(procs):
            proc.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_drive(*sys.argv[1:4]))
