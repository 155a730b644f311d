"""Pinned plans through a live controller, measured end to end: the scenario behind the prediction test and
`bench/seq_prediction.py`.

A device agent (in this process, emulated `paper-device` clock) joins a running
controller and edge server at a given sequence length; each plan is pinned over
REST, a few requests settle the freshly loaded parts, and the median measured
end-to-end latency is set against the plan's prediction (paper eqs. 4-11 plus
the measured per-request fixed cost T_fix). Like the agent, it reports telemetry
every `telemetry_every` requests, so later plans use T_fix as measured on the
requests so far, earlier ones the agent's probe.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from device_agent.node import DeviceNode
from device_agent.runner import DeviceRunner
from device_agent.settings import AgentSettings
from splitbed.control_client import ControlClient
from splitbed.v1 import control_pb2

TEXTS = ["Beautiful is better than ugly.", "Readability counts.", "Errors should never pass silently."]
PLANS: list[dict[str, float]] = [
    {"split": 1, "power_w": 0.2},
    {"split": 2, "rho_device": 0.7, "power_w": 0.05},
    {"split": 3, "power_w": 0.5},
    {"split": 4, "rho_server": 0.6, "power_w": 0.1},
    {"split": 5, "freq_device_hz": 6e8, "power_w": 0.3},
]


WARMUP_PINS: dict[str, float] = {"split": 3, "power_w": 0.5}


@dataclass
class PlanResult:
    seq_len: int
    pins: dict[str, float]
    predicted: dict[str, Any]  # the plan's Prediction, as REST shows it
    measured_s: float  # median end-to-end latency
    stages: dict[str, float]  # median of each measured stage, seconds
    record: dict[str, Any]  # one request's record

    @property
    def unmodelled_s(self) -> float:
        """Measured: median e2e minus the medians of the three modelled stages (what T_fix stands for)."""
        st = self.stages
        return self.measured_s - st["device_compute_s"] - st["upload_pacing_s"] - st["server_compute_s"]

    @property
    def error(self) -> float:
        return (self.measured_s - self.predicted["latency_s"]) / self.predicted["latency_s"]

    def line(self) -> str:
        p, st = self.predicted, self.stages
        return (f"seq {self.seq_len} {self.pins}: predicted {p['latency_s'] * 1e3:.1f} ms, measured "
                f"{self.measured_s * 1e3:.1f} ms, error {self.error:+.1%} (device {p['t_device_s'] * 1e3:.1f}/"
                f"{st['device_compute_s'] * 1e3:.1f}, upload {p['t_upload_s'] * 1e3:.1f}/"
                f"{st['upload_pacing_s'] * 1e3:.1f}, server {p['t_server_s'] * 1e3:.1f}/"
                f"{st['server_compute_s'] * 1e3:.1f}, fixed {p.get('t_fixed_s', 0.0) * 1e3:.1f}/"
                f"{self.unmodelled_s * 1e3:.1f} ms predicted/measured)")


async def _until_version(link: ControlClient, version: int) -> None:
    for _ in range(400):
        if link.version == version:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the agent did not apply version {version} (at {link.version})")


async def _measure_fixed_cost(client: httpx.AsyncClient, rest_url: str, runner: DeviceRunner, node: DeviceNode,
                              link: ControlClient, prepared: list[dict[str, Any]]) -> None:
    """A few requests through a split before the experiment, as an agent that has been running has made: its
    measured T_fix (sent at once) replaces the probe's lower bound in the plans that follow."""
    r = await client.put(f"{rest_url}/v1/pins", json=WARMUP_PINS)
    assert r.status_code == 200, r.text
    await _until_version(link, r.json()["version"])
    for i in range(8):
        rec = await runner.infer_one(prepared[i % len(prepared)], f"warm-{i}")
        if i >= 2:  # the first runs of a freshly loaded part are slower
            node.observe(rec)
            await link.report_telemetry()


async def run_plans(controller_address: str, rest_url: str, edge_address: str, seq_len: int,
                    plans: list[dict[str, float]] = PLANS, *, requests: int = 10,
                    device_profile: str = "paper-device") -> list[PlanResult]:
    """Each plan pinned in turn with an agent sending `seq_len` tokens; results in plan order."""
    runner = DeviceRunner(AgentSettings(server=edge_address, clock="emulated", clock_profile=device_profile,
                                        seq_len=seq_len, encoding="fp16", warmup=0, node_id="dev-p"))
    await runner.connect(standalone=False)
    node = DeviceNode.of(runner)
    link = ControlClient(controller_address, "dev-p", control_pb2.ROLE_DEVICE, node)
    link.start()
    results = []
    try:
        await asyncio.wait_for(link.first_config.wait(), 120)
        prepared = runner.prepare(TEXTS)
        async with httpx.AsyncClient(timeout=120) as client:
            await _measure_fixed_cost(client, rest_url, runner, node, link, prepared)
            for pins in plans:
                r = await client.put(f"{rest_url}/v1/pins", json=pins)
                assert r.status_code == 200, r.text
                plan = r.json()
                await _until_version(link, plan["version"])
                for i in range(2):  # the first runs of freshly loaded parts are slower
                    await runner.infer_one(prepared[i], f"settle-{i}")
                recs = []
                for i in range(requests):
                    rec = await runner.infer_one(prepared[i % 3], f"p{plan['version']}-{i}")
                    node.observe(rec)  # as the agent does: telemetry (and its measured T_fix) every N requests
                    await link.report_telemetry()
                    recs.append(rec.to_dict())
                assert {r["config_version"] for r in recs} == {plan["version"]}
                stages = {k: statistics.median(r["timings"][k] for r in recs) for k in recs[0]["timings"]}
                results.append(PlanResult(seq_len, pins, plan["config"]["predicted"],
                                          statistics.median(r["timings"]["e2e_s"] for r in recs), stages, recs[0]))
    finally:
        await link.close()
        await runner.close()
    return results


def measure_lengths(lengths: list[int], plans_for: Callable[[int], list[dict[str, float]]], *, out: Path,
                    requests: int = 10, device_profile: str = "paper-device", server_profile: str = "edge-cpu",
                    edge_args: Sequence[str] = (), say: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """A controller and an emulated edge server as real processes; every plan of `plans_for(seq)` pinned at each
    length in turn. One row per plan, all rows written to `out` after each length (nothing lost)."""
    from tests.launch import start, start_controller  # processes: only for the benches, not the pytest import

    controller = start_controller(["--latency-budget-s", "2", "--energy-budget-j", "2"])
    rows: list[dict[str, Any]] = []
    try:
        edge = start("edge_server", ["serve", "--host", "127.0.0.1", "--controller", controller.address,
                                     "--clock", "emulated", "--clock-profile", server_profile, "--node-id", "edge-p",
                                     *edge_args], threads=2)
        try:
            for node in httpx.get(f"{controller.rest_url}/v1/nodes", timeout=30).json():
                curve = node["profile"]["compute"].get("flops_by_seq_len", [])
                say(f"{node['node_id']} FLOP/s by length: " + ", ".join(
                    f"{p['seq_len']}: {p['achieved_flops_per_s'] / 1e9:.2f} G" for p in curve))
            for seq in lengths:
                results = asyncio.run(run_plans(controller.address, controller.rest_url, edge.address, seq,
                                                plans_for(seq), requests=requests, device_profile=device_profile))
                for r in results:
                    say(r.line())
                    rows.append({"seq_len": seq, "pins": r.pins, "predicted_s": r.predicted["latency_s"],
                                 "measured_s": r.measured_s, "error": r.error, "stages_s": r.stages,
                                 "t_fixed_s": r.predicted.get("t_fixed_s", 0.0), "unmodelled_s": r.unmodelled_s,
                                 "predicted": r.predicted})
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(rows, indent=2))
        finally:
            edge.stop()
    finally:
        controller.stop()
    return rows


def host_load() -> str:
    """The 1/5/15-minute load averages and the core count, for the figures' label."""
    return f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"


def error_table(rows: list[dict[str, Any]], key: str, target: float, title: str) -> tuple[Any, bool]:
    """Per value of `key`: plans, largest |error|, mean error, mean T_fix predicted vs measured; all within?"""
    from rich.table import Table

    table = Table(title=title)
    for col in (key, "plans", "max |error|", "mean error", "T_fix predicted ms", "unmodelled measured ms",
                "target met"):
        table.add_column(col)
    ok = True
    for value in sorted({r[key] for r in rows}):
        mine = [r for r in rows if r[key] == value]
        errs = [r["error"] for r in mine]
        worst = max(abs(e) for e in errs)
        ok &= worst <= target
        table.add_row(str(value), str(len(errs)), f"{worst:.1%}", f"{sum(errs) / len(errs):+.1%}",
                      f"{statistics.mean(r['t_fixed_s'] for r in mine) * 1e3:.2f}",
                      f"{statistics.mean(r['unmodelled_s'] for r in mine) * 1e3:.2f}",
                      "yes" if worst <= target else "no")
    return table, ok
