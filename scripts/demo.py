"""`make demo`: the testbed's three processes on loopback with the embedded defaults.

1. starts the controller, an edge server and a device agent (all-MiniLM-L6-v2, real weights; clocks
   emulated to the paper's device and a modest edge CPU; uplink paced at r(p));
2. the controller collects their measured profiles, solves P1 over every split point for the default
   budgets and pushes the plan (version 1) to both sides;
3. while the agent streams the sample workload, the budget is changed through REST
   (`PUT /v1/budget`), and the new plan is applied live;
4. prints, per plan version: L, rho, rho~, p, f, f~ and predicted vs measured latency; stops every
   process and exits 0.

The device is the paper's (1 GHz x 32 FLOPs/cycle) with a power coefficient a tenth of the edge
server's (phi = 1e-29 against 1e-28), 50 m from the server on a 20 MHz uplink, at 128 tokens, uploading
fp16. With the paper's default device (500 m on 5 MHz, fp32) the upload costs more than the server saves,
so every budget gives L = 0 or L = n; here the device is the frugal side and the server the fast one, so
the default budgets (T0 = 66 ms, E0 = 11 mJ) plan a split with device layers and both sides pruned, and
the live change (T0 = 100 ms, E0 = 4 mJ) moves the whole model onto the device.
Both were solved offline with `controller solve` for T_fix from 3 to 10 ms and a slower measured c.

`--standalone` runs the controller-less variant (explicit flags only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from device_agent.record import RequestRecord
from device_agent.report import version_rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the source-checkout launcher lives in tests/
from tests.launch import ROOT, Proc, child_env, start, start_controller, start_edge

console = Console(width=150)

# The demo's defaults (see the module note); tests/test_demo_plan.py solves them offline.
LATENCY_S, ENERGY_J = 0.066, 0.011  # plan 1: device layers, both sides pruned
NEW_LATENCY_S, NEW_ENERGY_J = 0.1, 0.004  # set live: the whole model on the device
DEVICE_POWER_COEFF, DISTANCE_M, BANDWIDTH_HZ, SEQ_LEN = 1e-29, 50.0, 2e7, 128


def standalone(args: argparse.Namespace, out: Path) -> int:
    console.rule("[bold]split-inference testbed demo (standalone: explicit flags)")
    edge = start_edge(args.split, args.rho_server, args.method)
    try:
        console.print(f"edge server on {edge.address}: layers [{args.split}, 6) + pooling, rho~={args.rho_server}")
        return subprocess.run(
            [sys.executable, "-m", "device_agent", "run", "--server", edge.address, "--split", str(args.split),
             "--rho", str(args.rho), "--method", args.method, "--encoding", "fp16", "--out", str(out),
             "--reference"], env=child_env(), cwd=ROOT, check=False).returncode
    finally:
        edge.stop()


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


def plan_line(plan: dict[str, Any]) -> str:
    k, p = plan["config"]["knobs"], plan["config"]["predicted"]
    return (f"v{plan['version']}: L={k['split']} rho={k['rho_device']:.3f} rho~={k['rho_server']:.3f} "
            f"p={k['power_w'] * 1e3:.1f} mW f={k['freq_device_hz'] / 1e6:.0f} MHz "
            f"f~={k['freq_server_hz'] / 1e6:.0f} MHz"
            f" -> predicted {p['latency_s'] * 1e3:.1f} ms, {p['energy_j'] * 1e3:.2f} mJ")


def version_table(records: list[RequestRecord], plans: dict[int, dict[str, Any]]) -> Table:
    table = Table(title="plans applied live (predicted: paper eqs. 4-11 with the plan's knobs; measured: "
                        "median e2e, perf_counter, emulated clocks + paced uplink)")
    for col in ("version", "requests", "L", "rho", "rho~", "p (mW)", "f (MHz)", "f~ (MHz)", "predicted (ms)",
                "measured (ms)", "error", "cosine"):
        table.add_column(col, justify="right")
    for row in version_rows(records):
        version = row["version"]
        cosines = [r.cosine for r in records if r.config_version == version and r.cosine is not None]
        cos = statistics.mean(cosines) if cosines else float("nan")
        measured = f"{row['measured_s'] * 1e3:.1f}"
        plan = plans.get(version)
        if plan is None or row["error"] is None:
            table.add_row(str(version), str(row["requests"]), *["-"] * 7, measured, "-", f"{cos:.4f}")
            continue
        k = plan["config"]["knobs"]
        table.add_row(str(version), str(row["requests"]), str(k["split"]), f"{k['rho_device']:.3f}",
                      f"{k['rho_server']:.3f}", f"{k['power_w'] * 1e3:.1f}", f"{k['freq_device_hz'] / 1e6:.0f}",
                      f"{k['freq_server_hz'] / 1e6:.0f}", f"{row['predicted_s'] * 1e3:.1f}", measured,
                      f"{row['error']:+.1%}", f"{cos:.4f}")
    return table


def with_controller(args: argparse.Namespace, out: Path) -> int:
    console.rule("[bold]split-inference testbed demo: controller + edge server + device agent on loopback")
    procs: list[Proc] = []
    agent: subprocess.Popen[bytes] | None = None
    try:
        controller = start_controller(["--latency-budget-s", str(args.latency), "--energy-budget-j",
                                       str(args.energy)])
        procs.append(controller)
        url = controller.rest_url
        console.print(f"controller: gRPC {controller.address}, REST {url} (OpenAPI at {url}/docs); "
                      f"budget T0={args.latency * 1e3:.0f} ms, E0={args.energy * 1e3:.1f} mJ")
        # With 4+ cores the two sides get disjoint halves (--cpus auto); on 2 cores one core alone is slower
        # than the emulated edge-cpu profile, so they share both.
        pin = ["--cpus", "auto"] if (os.cpu_count() or 1) >= 4 else []
        edge = start("edge_server", ["serve", "--host", "127.0.0.1", "--controller", controller.address,
                                     "--clock", "emulated", "--clock-profile", "edge-cpu", "--node-id", "edge-0",
                                     *pin], threads=2)
        procs.append(edge)
        console.print(f"edge server: {edge.address} (clock emulated: profile edge-cpu, 2 GHz x 32 FLOPs/cycle)")
        agent = subprocess.Popen(
            [sys.executable, "-m", "device_agent", "run", "--server", edge.address, "--controller",
             controller.address, "--clock", "emulated", "--clock-profile", "paper-device", "--seq-len",
             str(args.seq_len), "--repeat", str(args.repeat), "--out", str(out), "--reference",
             "--node-id", "device-0", "--encoding", "fp16", "--power-coeff", str(args.device_power_coeff),
             "--distance-m", str(args.distance_m), "--bandwidth-hz", str(args.bandwidth_hz), *pin],
            env=child_env(), cwd=ROOT)
        console.print(f"device agent: paper device (1 GHz x 32 FLOPs/cycle, emulated, phi="
                      f"{args.device_power_coeff:g}), uplink paced at r(p) ({args.distance_m:g} m, "
                      f"{args.bandwidth_hz / 1e6:g} MHz); {args.repeat} passes over the built-in sample at "
                      f"{args.seq_len} tokens")
        plans: dict[int, dict[str, Any]] = {}
        plan = wait_for(lambda: (p := httpx.get(f"{url}/v1/plan").json())["status"] == "applied" and p, 180,
                        "the first plan")
        wait_for(lambda: all(n["applied_version"] >= plan["version"] for n in httpx.get(f"{url}/v1/nodes").json()),
                 120, "both nodes to apply the first plan")
        plans[plan["version"]] = plan
        console.print(f"[bold green]plan {plan_line(plan)}")
        nodes = httpx.get(f"{url}/v1/nodes").json()
        for n in nodes:
            c = n["profile"]["compute"]
            console.print(f"  {n['role']} {n['node_id']}: measured {c['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s "
                          f"at {c['clock_hz'] / 1e6:.0f} MHz -> c={c['flops_per_cycle']:.1f} FLOPs/cycle "
                          f"({c['clock_backend']}); applied {n['applied']} ({n['applied_sources']})")
        wait_for(lambda: any(n.get("telemetry", {}).get("requests") for n in httpx.get(f"{url}/v1/nodes").json()
                             if n["role"] == "device"), 300, "the agent's first telemetry")
        console.print(f"[bold]PUT /v1/budget: T0={args.new_latency * 1e3:.0f} ms, E0={args.new_energy * 1e3:.1f} mJ")
        r = httpx.put(f"{url}/v1/budget", json={"latency_s": args.new_latency, "energy_j": args.new_energy},
                      timeout=120)
        body = r.json()
        if r.status_code == 200:
            plans[body["version"]] = body
            console.print(f"[bold green]plan {plan_line(body)} (applied live)")
        else:
            console.print(f"[yellow]{r.status_code}: {body.get('detail')}")
        code = agent.wait(timeout=900)
        agent = None
        if code != 0:
            console.print(f"[red]device agent exited with {code}")
            return code
        records = [RequestRecord.from_dict(json.loads(line)) for line in out.read_text().splitlines()]
        console.print(version_table(records, plans))
    finally:
        if agent is not None:
            agent.kill()
        for proc in reversed(procs):
            proc.stop()
        console.print("all processes stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--standalone", action="store_true", help="no controller: explicit split and ratios")
    parser.add_argument("--split", type=int, default=3)
    parser.add_argument("--rho", type=float, default=0.9)
    parser.add_argument("--rho-server", type=float, default=0.8)
    parser.add_argument("--method", default="structured-magnitude")
    parser.add_argument("--latency", type=float, default=LATENCY_S, help="initial T0, s")
    parser.add_argument("--energy", type=float, default=ENERGY_J, help="initial E0, J")
    parser.add_argument("--new-latency", type=float, default=NEW_LATENCY_S, help="T0 set live through REST, s")
    parser.add_argument("--new-energy", type=float, default=NEW_ENERGY_J, help="E0 set live through REST, J")
    parser.add_argument("--device-power-coeff", type=float, default=DEVICE_POWER_COEFF,
                        help="device phi, W/(cycle/s)^3")
    parser.add_argument("--distance-m", type=float, default=DISTANCE_M, help="device-server distance, m")
    parser.add_argument("--bandwidth-hz", type=float, default=BANDWIDTH_HZ, help="uplink bandwidth B, Hz")
    parser.add_argument("--seq-len", type=int, default=SEQ_LEN)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="splitbed-demo-")) / "results.jsonl"
    code = standalone(args, out) if args.standalone else with_controller(args, out)
    if code == 0:
        console.print(f"[green]done: per-request records in {out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
