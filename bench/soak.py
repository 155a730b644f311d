"""Soak: controller + edge server + two device agents for `--minutes`, with live changes and one edge restart.

Every 30 s the latency/energy budget changes through REST (`PUT /v1/budget`),
once the link changes (`PUT /v1/pins {"power_w": ...}`: the agents' paced
uplink rate follows r(p)), and once the edge server is stopped (SIGTERM,
drain) and restarted on the same port. At the end the agents are interrupted
(SIGINT) and their record files checked.

Reports: requests (records written), errors (agent log ERROR lines and exit
causes other than the final SIGINT; target 0), lost records (gaps and
duplicates in each agent's sequence numbers; target 0), each process's RSS
drift after warm-up (psutil RSS, median of the first vs the last minute
after warm-up; target < 50 MiB) and open file descriptors (psutil num_fds).
Results: bench/results/soak.json.

Usage: python bench/soak.py [--minutes 10] [--warmup-minutes 2]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from device_agent.records import read_records  # noqa: E402
from tests.launch import Proc, child_env, start, start_controller  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MIB = 1024 * 1024
BUDGETS = [(0.2, 0.05), (0.12, 0.04)]  # (T0 s, E0 J), alternated


def start_edge(controller: Proc, port: int = 0) -> Proc:
    return start("edge_server", ["serve", "--host", "127.0.0.1", "--controller", controller.address,
                                 "--node-id", "edge-0"], port_flags=("--port", str(port)))


def start_agent(i: int, edge: Proc, controller: Proc, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "device_agent", "run", "--server", edge.address, "--controller", controller.address,
         "--node-id", f"device-{i}", "--seq-len", "32", "--repeat", "100000", "--warmup", "0", "--quiet",
         "--out", str(tmp / f"agent{i}.jsonl"), "--log-level", "WARNING"],
        stdout=(tmp / f"agent{i}.log").open("wb"), stderr=subprocess.STDOUT, env=child_env(1), cwd=ROOT,
        # A bench started in the background (`cmd &`) ignores SIGINT, and children inherit that: restore it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


class Sampler:
    """RSS and fds of named processes over time."""

    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[float, int, int]]] = {}

    def sample(self, procs: dict[str, int], t: float) -> None:
        for name, pid in procs.items():
            try:
                p = psutil.Process(pid)
                self.samples.setdefault(name, []).append((t, p.memory_info().rss, p.num_fds()))
            except psutil.Error:
                pass

    def report(self, warmup_s: float) -> dict[str, Any]:
        out = {}
        for name, rows in self.samples.items():
            start = rows[0][0] + warmup_s
            steady = [r for r in rows if r[0] >= start]
            if len(steady) < 4:
                out[name] = {"note": "too short after warm-up", "samples": len(rows)}
                continue
            first = [r[1] for r in steady if r[0] < steady[0][0] + 60] or [steady[0][1]]
            last = [r[1] for r in steady if r[0] > steady[-1][0] - 60] or [steady[-1][1]]
            out[name] = {"rss_start_mib": statistics.median(first) / MIB,
                         "rss_end_mib": statistics.median(last) / MIB,
                         "rss_drift_mib": (statistics.median(last) - statistics.median(first)) / MIB,
                         "fds_start": steady[0][2], "fds_end": steady[-1][2],
                         "seconds_observed": rows[-1][0] - rows[0][0]}
        return out


def check_records(path: Path) -> dict[str, Any]:
    records, _ = read_records(path)
    seqs = [r["seq"] for r in records]
    unique = set(seqs)
    lost = (max(unique) - len(unique)) if unique else 0
    return {"records": len(records), "duplicates": len(seqs) - len(unique), "lost": lost,
            "with_error": sum(1 for r in records if "error" in r)}


def agent_errors(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if " ERROR " in line or line.startswith("Traceback")]


def stop_agent(agent: subprocess.Popen[bytes]) -> int | str:
    """SIGINT (the agent closes its file and exits 130), SIGKILL after 60 s."""
    if agent.poll() is None:
        agent.send_signal(signal.SIGINT)
    try:
        return agent.wait(60)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()
        return "killed after SIGINT + 60 s"


def put(url: str, path: str, body: dict[str, Any], events: list[dict[str, Any]], t: float) -> None:
    try:
        r = httpx.put(url + path, json=body, timeout=120)
        events.append({"t_s": round(t, 1), "put": path, "body": body, "status": r.status_code})
    except httpx.HTTPError as exc:
        events.append({"t_s": round(t, 1), "put": path, "body": body, "error": str(exc)})


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    controller = start_controller(["--latency-budget-s", str(BUDGETS[0][0]), "--energy-budget-j",
                                   str(BUDGETS[0][1])])
    edge = start_edge(controller)
    agents = [start_agent(i, edge, controller, tmp) for i in range(2)]
    sampler, events = Sampler(), []
    duration, t0 = args.minutes * 60, time.monotonic()
    restart_at, link_at, next_budget, budget_i, edge_gen = duration * 0.4, duration * 0.6, 30.0, 1, 0
    try:
        while (t := time.monotonic() - t0) < duration:
            sampler.sample({"controller": controller.popen.pid, f"edge#{edge_gen}": edge.popen.pid,
                            **{f"agent{i}": a.pid for i, a in enumerate(agents)}}, t)
            exited = [i for i, a in enumerate(agents) if a.poll() is not None]
            if exited:
                events.append({"t_s": round(t, 1), "agents_exited_early": exited})
                break
            if t >= next_budget:
                lat, en = BUDGETS[budget_i % 2]
                put(controller.rest_url, "/v1/budget", {"latency_s": lat, "energy_j": en}, events, t)
                budget_i, next_budget = budget_i + 1, next_budget + 30.0
            if restart_at is not None and t >= restart_at:
                port, code = edge.port, edge.stop(60)
                edge = start_edge(controller, port)
                edge_gen += 1
                events.append({"t_s": round(t, 1), "edge_restart": f"SIGTERM exit {code}, restarted on {port}"})
                restart_at = None
            if link_at is not None and t >= link_at:
                put(controller.rest_url, "/v1/pins", {"power_w": 0.05}, events, t)
                link_at = None
            time.sleep(args.sample_s)
    finally:
        try:
            codes = [stop_agent(a) for a in agents]
        finally:
            edge.stop()
            controller.stop()
    agent_rows = []
    for i, code in enumerate(codes):
        row = {"exit_code": code, **check_records(tmp / f"agent{i}.jsonl"),
               "error_lines": agent_errors(tmp / f"agent{i}.log")[:5],
               "resends": (tmp / f"agent{i}.log").read_text(errors="replace").count("resending")}
        agent_rows.append(row)
    return {"minutes": args.minutes, "warmup_minutes": args.warmup_minutes, "logs": str(tmp), "events": events,
            "agents": agent_rows, "processes": sampler.report(args.warmup_minutes * 60),
            "rss_source": "measured: psutil RSS, median of the first vs the last minute after warm-up"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup-minutes", type=float, default=2.0)
    parser.add_argument("--sample-s", type=float, default=2.0)
    args = parser.parse_args()
    result = run(args)
    requests = sum(a["records"] for a in result["agents"])
    errors = sum(len(a["error_lines"]) + a["with_error"] for a in result["agents"])
    lost = sum(a["lost"] + a["duplicates"] for a in result["agents"])
    drift = {k: v.get("rss_drift_mib") for k, v in result["processes"].items()}
    result["summary"] = {"requests": requests, "errors": errors, "lost_or_duplicated": lost, "rss_drift_mib": drift,
                         "targets": {"errors": 0, "lost": 0, "rss_drift_mib": 50}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
