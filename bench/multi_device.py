"""1, 2 and 4 emulated agents on one edge server, planned jointly: per device predicted vs measured latency,
server queueing and throughput.

Usage: python bench/multi_device.py [--counts 1,2,4] [--requests 20] [--latency-budget-s 0.5] [--out DIR]

Real processes: a controller and an edge server (emulated `paper-device` clock,
slower than `edge-cpu` so a shared 2-core host can emulate it); the agents run
in this process, clocks emulated with profiles taken in turn from
`paper-device` and `raspberry-pi-4`, each open loop at its planned rate
1/T0_k and slot offset (`--rate`), all at once. Latency is measured end to end
(agent wall clock); server queueing is the edge's `server_other_s` (time
between receipt and compute, decode included); prediction is paper eqs. 4-11
with each device's plan (no queueing). The baseline is the one-agent run.
Writes multi_device.json / .csv / .png under --out, each row as it completes.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device_agent.node import DeviceNode
from device_agent.open_loop import run_open_loop
from device_agent.runner import DeviceRunner
from device_agent.settings import AgentSettings
from splitbed.control_client import ControlClient
from splitbed.v1 import control_pb2
from tests.launch import start, start_controller

PROFILES = ("paper-device", "raspberry-pi-4")
TEXTS = ["Beautiful is better than ugly.", "Readability counts.", "Errors should never pass silently."]


async def _agent(controller: Any, edge: Any, i: int, args: argparse.Namespace,
                 ) -> tuple[DeviceRunner, ControlClient, DeviceNode]:
    runner = DeviceRunner(AgentSettings(server=edge.address, clock="emulated", clock_profile=PROFILES[i % 2],
                                        seq_len=128, encoding=args.encoding, warmup=2, node_id=f"dev-{i}",
                                        distance_m=args.distance_m, bandwidth_hz=args.bandwidth_hz))
    await runner.connect(standalone=False)
    node = DeviceNode.of(runner)
    link = ControlClient(controller.address, f"dev-{i}", control_pb2.ROLE_DEVICE, node)
    link.start()
    await asyncio.wait_for(link.first_config.wait(), 180)
    return runner, link, node


async def _settle(agents: list[Any], n: int, timeout_s: float = 180.0) -> None:
    """Until every agent runs a per-device plan of the same group (versions stop changing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = [a[0].state for a in agents]
        if n == 1 or (all(a[2].slot[0] > 0 for a in agents) and len({s.version for s in states}) == n):
            await asyncio.sleep(1.0)
            if [a[0].state.version for a in agents] == [s.version for s in states]:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError("the agents did not get their per-device plans")


async def _one_agent_run(agent: Any, requests: int) -> tuple[list[dict[str, Any]], float]:
    runner, _link, node = agent
    period = node.slot[0] or runner.state.predicted.latency_s * 2
    texts = [TEXTS[i % len(TEXTS)] for i in range(requests)]
    t0 = time.perf_counter()
    recs = await run_open_loop(runner, texts, 1.0 / period, lambda: node.slot)
    return [r.to_dict() for r in recs], time.perf_counter() - t0


def _row(n: int, agent: Any, recs: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    runner = agent[0]
    pred = runner.state.predicted
    med = {k: statistics.median(r["timings"][k] for r in recs) for k in ("e2e_s", "server_other_s")}
    return {"agents": n, "device": runner.settings.node_id, "clock_profile": runner.settings.clock_profile,
            "version": runner.state.version, "split": runner.state.split, "rho_device": runner.state.rho_device,
            "rho_server": runner.state.rho_server, "period_s": agent[2].slot[0], "offset_s": agent[2].slot[1],
            "predicted_s": pred.latency_s, "measured_s": med["e2e_s"],
            "error": (med["e2e_s"] - pred.latency_s) / pred.latency_s, "server_queue_s": med["server_other_s"],
            "server_queue_p90_s": sorted(r["timings"]["server_other_s"] for r in recs)[int(0.9 * len(recs))],
            "throughput_rps": len(recs) / elapsed}


async def run_count(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    controller = start_controller(["--latency-budget-s", str(args.latency_budget_s), "--energy-budget-j",
                                   str(args.energy_budget_j)])
    edge = start("edge_server", ["serve", "--host", "127.0.0.1", "--controller", controller.address, "--clock",
                                 "emulated", "--clock-profile", args.server_profile, "--node-id", "edge-b"],
                 threads=2)
    agents: list[Any] = []
    try:
        for i in range(n):
            agents.append(await _agent(controller, edge, i, args))
        await _settle(agents, n)
        results = await asyncio.gather(*(_one_agent_run(a, args.requests) for a in agents))
        return [_row(n, a, recs, el) for a, (recs, el) in zip(agents, results, strict=True)]
    finally:
        for runner, link, _ in agents:
            await link.close()
            await runner.close()
        edge.stop()
        controller.stop()


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{r['agents']}:{r['device']}" for r in rows]
    x = range(len(rows))
    ax1.bar([i - 0.2 for i in x], [r["predicted_s"] * 1e3 for r in rows], 0.4, label="predicted (eqs. 4-11)")
    ax1.bar([i + 0.2 for i in x], [r["measured_s"] * 1e3 for r in rows], 0.4, label="measured median (e2e)")
    ax1.set_xticks(list(x), labels, rotation=45, ha="right")
    ax1.set_ylabel("latency, ms")
    ax1.set_title("per device, by number of agents (emulated clocks)")
    ax1.legend()
    ax2.bar(list(x), [r["server_queue_s"] * 1e3 for r in rows])
    ax2.set_xticks(list(x), labels, rotation=45, ha="right")
    ax2.set_ylabel("server queueing (server_other_s median), ms")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="1,2,4")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--latency-budget-s", type=float, default=0.5, help="every device's T0, s")
    ap.add_argument("--energy-budget-j", type=float, default=2.0, help="every device's E0, J")
    # The default server is as slow as the paper's device so that a busy 2-core host can emulate it; with it
    # (and the paper's 500 m, 5 MHz link) every device plans L = n and the server is never shared. A faster
    # server and a shorter link (e.g. --server-profile edge-cpu --distance-m 50 --bandwidth-hz 20e6) make the
    # devices share it.
    ap.add_argument("--server-profile", default="paper-device", help="the edge server's emulated clock profile")
    ap.add_argument("--distance-m", type=float, default=500.0, help="each agent's distance to the server, m")
    ap.add_argument("--bandwidth-hz", type=float, default=5e6, help="uplink bandwidth B, Hz")
    ap.add_argument("--encoding", default="fp16", choices=["fp32", "fp16", "int8"], help="hidden-state encoding")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for n in (int(c) for c in args.counts.split(",")):
        rows += asyncio.run(run_count(n, args))
        (args.out / "multi_device.json").write_text(json.dumps(rows, indent=2))  # each count as it completes
    with (args.out / "multi_device.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot(rows, args.out / "multi_device.png")
    base = next(r for r in rows if r["agents"] == 1)
    for r in rows:
        print(f"{r['agents']} agents {r['device']} ({r['clock_profile']}): split {r['split']}, predicted "
              f"{r['predicted_s'] * 1e3:.1f} ms, measured {r['measured_s'] * 1e3:.1f} ms ({r['error']:+.1%}), "
              f"server queueing {r['server_queue_s'] * 1e3:.1f} ms (p90 {r['server_queue_p90_s'] * 1e3:.1f}), "
              f"{r['throughput_rps']:.2f} req/s; latency x{r['measured_s'] / base['measured_s']:.2f} of 1 agent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
