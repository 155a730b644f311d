"""Summary of a compose run: what each agent measured against what its own plan predicted.

Runs as the compose service `report` (controller image, standard library only)
once every agent has exited 0, so `docker compose up --exit-code-from report
--attach report` returns when the run is over, with this script's
exit code:

    python3 /opt/splitbed/report.py --results /results --controller http://controller:8080 \\
        [--agents device-1,device-2] [--max-error 0.15] [--expect-knobs] [--knob-rho 0.9] \\
        [--expect-link tbf] [--max-drift-replans 0]

Per agent it prints the plan it got (split L, rho, rho~, p, f, f~ from the
controller's per-device plan), the median latency it measured under the latest
version against that version's prediction, and the server queueing its requests
saw (median server_other_s: the edge's decode + wait before compute, measured).

Exit 0 when every agent wrote records under a controller plan, 1 otherwise, or
when a check asked for fails, each one per agent: --max-error bounds |median
measured - predicted| / predicted; --expect-knobs asks that the plan uses device
layers and pruning (0 < L < n, and min(rho, rho~) <= --knob-rho); --expect-link
names the uplink backend; --max-drift-replans bounds the plans the controller's
history gives the reason "channel drift".
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DRIFT_REASON = "channel drift"


def _tls() -> ssl.SSLContext | None:
    """HTTPS to a controller with TLS: CA and client certificate from REPORT_TLS_CA / _CERT / _KEY."""
    ca = os.environ.get("REPORT_TLS_CA")
    if not ca:
        return None
    ctx = ssl.create_default_context(cafile=ca)
    if os.environ.get("REPORT_TLS_CERT"):
        ctx.load_cert_chain(os.environ["REPORT_TLS_CERT"], os.environ.get("REPORT_TLS_KEY"))
    return ctx


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10, context=_tls()) as resp:
        return json.loads(resp.read().decode())


def _records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def device_plans(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each device's planned knobs (the answer of its own plan); one device: the single plan."""
    out: dict[str, dict[str, Any]] = {}
    for group in plan.get("groups") or []:
        for dev_id, dev in (group.get("devices") or {}).items():
            out[dev_id] = dict(dev.get("answer") or {}, version=dev.get("version"))
    if not out and plan.get("answer"):
        out["*"] = dict(plan["answer"], version=plan.get("version"))
    return out


def summarise(node_id: str, recs: list[dict[str, Any]], n_layers: int | None) -> tuple[list[str], dict[str, Any]]:
    """Problems found and the figures of the latest plan version the agent ran under."""
    problems = []
    versions = sorted({int(r.get("config_version", 0)) for r in recs})
    if not recs:
        return [f"{node_id}: no records"], {}
    if min(versions) < 1:
        problems.append(f"{node_id}: records not made under a controller plan (config_version 0)")
    last = [r for r in recs if int(r.get("config_version", 0)) == versions[-1]]
    measured = statistics.median(r["timings"]["e2e_s"] for r in last)
    predicted = last[0].get("predicted", {}).get("latency_s") or 0.0
    queue = statistics.median(r["timings"].get("server_other_s", 0.0) for r in last)
    # An emulated clock stretches compute to f*c; a request it did not stretch ran slower than that on a
    # busy host (emulation can only slow down), so its time is the host's, not the plan's.
    unstretched = {side: sum(1 for r in last if r["timings"].get(f"{side}_compute_s", 0) > 0
                             and r["timings"].get(f"{side}_stretch_s", 1.0) <= 0) / len(last)
                   for side in ("device", "server")}
    fig = {"unstretched": unstretched, "records": len(recs), "versions": versions, "split": last[0]["split"],
           "rho": last[0]["rho"], "rho_server": last[0]["rho_server"], "measured_s": measured, "predicted_s": predicted,
           "queue_s": queue, "error": (measured - predicted) / predicted if predicted > 0 else None,
           "n_layers": n_layers}
    return problems, fig


def check(fig: dict[str, Any], node_id: str, max_error: float | None, expect_knobs: bool,
          knob_rho: float = 0.9) -> list[str]:
    problems = []
    if max_error is not None and (fig["error"] is None or abs(fig["error"]) > max_error):
        problems.append(f"{node_id}: prediction error {fig['error']} exceeds {max_error:.0%}")
    if expect_knobs:
        n = fig["n_layers"]
        if not (0 < fig["split"] < (n if n else fig["split"] + 1)):
            problems.append(f"{node_id}: split {fig['split']} puts no layers on one side (n = {n})")
        if min(fig["rho"], fig["rho_server"]) > knob_rho:
            problems.append(f"{node_id}: plan prunes little or nothing (rho = {fig['rho']:.3f}, "
                            f"rho~ = {fig['rho_server']:.3f}, neither <= {knob_rho})")
    return problems


def drift_replans(plan: dict[str, Any], now: float | None = None) -> tuple[int, float]:
    """Plans made for channel drift in the controller's history, and the seconds that history spans."""
    history = plan.get("history") or []
    drifts = sum(1 for h in history if h.get("reason") == DRIFT_REASON)
    first = min((float(h["at"]) for h in history if h.get("at")), default=None)
    return drifts, ((now or time.time()) - first) if first is not None else 0.0


def _mhz(hz: Any) -> str:
    return f"{float(hz) / 1e6:.0f}" if hz else "-"


def _row(node_id: str, fig: dict[str, Any], planned: dict[str, Any], node: dict[str, Any]) -> str:
    applied = node.get("applied") or {}
    err = f"{fig['error']:+.1%}" if fig["error"] is not None else "n/a"
    power = planned.get("power_w")
    return (f"{node_id:<10} {fig['records']:>7} {fig['versions'][-1]:>3} {fig['split']:>2} {fig['rho']:>6.3f} "
            f"{fig['rho_server']:>6.3f} {f'{power:.3f}' if power is not None else '-':>6} "
            f"{_mhz(planned.get('freq_device_hz')):>5} {_mhz(planned.get('freq_server_hz')):>5} "
            f"{fig['predicted_s'] * 1e3:>8.1f}ms {fig['measured_s'] * 1e3:>8.1f}ms {err:>7} "
            f"{fig['queue_s'] * 1e3:>6.1f}ms  f={_mhz(applied.get('freq_device_hz'))} MHz, "
            f"p={applied.get('power_w', 0):.3f} W ({(node.get('applied_sources') or {}).get('power_w', '?')})")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("/results"))
    ap.add_argument("--controller", default="http://controller:8080")
    ap.add_argument("--agents", default="device-1,device-2")
    ap.add_argument("--max-error", type=float, default=None)
    ap.add_argument("--expect-knobs", action="store_true")
    ap.add_argument("--knob-rho", type=float, default=0.9, help="--expect-knobs: min(rho, rho~) at most this")
    ap.add_argument("--expect-link", default=None)
    ap.add_argument("--max-drift-replans", type=int, default=None)
    args = ap.parse_args(argv)
    nodes = {n["node_id"]: n for n in _get(f"{args.controller}/v1/nodes")}
    plan = _get(f"{args.controller}/v1/plan")
    plans = device_plans(plan)
    problems: list[str] = []
    print("plan = the agent's own plan (controller); measured = median e2e under its latest version; "
          "queue = median server decode + wait before compute (edge, measured)")
    print(f"{'agent':<10} {'records':>7} {'ver':>3} {'L':>2} {'rho':>6} {'rho~':>6} {'p W':>6} {'f MHz':>5} "
          f"{'f~':>5} {'predicted':>10} {'measured':>10} {'error':>7} {'queue':>8}  applied clock / power")
    for node_id in args.agents.split(","):
        path = args.results / f"{node_id}.jsonl"
        if not path.exists():
            problems.append(f"{node_id}: {path} missing")
            continue
        node = nodes.get(node_id, {})
        found, fig = summarise(node_id, _records(path), node.get("profile", {}).get("n_layers"))
        problems += found
        if not fig:
            continue
        problems += check(fig, node_id, args.max_error, args.expect_knobs, args.knob_rho)
        print(_row(node_id, fig, plans.get(node_id) or plans.get("*") or {}, node))
        if max(fig["unstretched"].values()) > 0.2:
            print(f"{'':<10} host-bound: {fig['unstretched']['device']:.0%} of device and "
                  f"{fig['unstretched']['server']:.0%} of server computes ran slower than the emulated clock "
                  f"(this host could not keep up: see docs/troubleshooting.md)")
        backend = node.get("profile", {}).get("link", {}).get("backend")
        if args.expect_link and backend != args.expect_link:
            problems.append(f"{node_id}: link backend {backend!r}, expected {args.expect_link!r}")
        if node.get("ack_error"):
            problems.append(f"{node_id}: ack error {node['ack_error']}")
    # A drift re-plan needs a gain estimate from the agent's uploads (device_agent.channel_estimate takes only
    # uploads longer than a few token-bucket lengths); without one the count below cannot be anything but 0.
    gains = {a: (nodes.get(a, {}).get("telemetry") or {}).get("gain") for a in args.agents.split(",")}
    for a, g in gains.items():
        planned = nodes.get(a, {}).get("profile", {}).get("link", {}).get("gain")
        print(f"{a}: channel gain planned {planned or 0:.3g}, estimated from uploads "
              f"{f'{g:.3g}' if g else 'never (no sustained upload)'}")
    drifts, span = drift_replans(plan)
    reasons = [f"v{h.get('version')}: {h.get('reason')}" for h in plan.get("history") or []]
    print(f"plan history ({span:.0f} s since the first plan): {', '.join(reasons) or 'empty'}; "
          f"{drifts} re-plan(s) for {DRIFT_REASON}")
    if args.max_drift_replans is not None and drifts > args.max_drift_replans:
        problems.append(f"{drifts} {DRIFT_REASON} re-plans in {span:.0f} s (at most {args.max_drift_replans})")
    if args.max_drift_replans is not None and not all(gains.values()):
        problems.append("drift check says nothing: " + ", ".join(a for a, g in gains.items() if not g)
                        + " never estimated its channel gain, so no drift re-plan could happen")
    for p in problems:
        print(f"problem: {p}")
    print("report: " + ("FAIL" if problems else "PASS"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
