"""Summary of a compose run: what each agent measured against what its plan predicted.

Runs as the compose service `report` (controller image, standard library only)
once every agent has exited 0, so `docker compose up --exit-code-from report
--abort-on-container-failure` returns when the run is over, with this script's
exit code:

    python3 /opt/splitbed/report.py --results /results --controller http://controller:8080 \\
        [--agents device-1,device-2] [--max-error 0.15] [--expect-knobs] [--expect-link tbf]

Exit 0 when every agent wrote records under a controller plan, 1 otherwise, or
when a check asked for fails: --max-error bounds |median measured - predicted|
/ predicted per agent (latest plan version); --expect-knobs asks that the plan
uses device layers and pruning (0 < L < n, and rho < 1 or rho~ < 1);
--expect-link names the uplink backend every agent must report.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any


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
    fig = {"records": len(recs), "versions": versions, "split": last[0]["split"], "rho": last[0]["rho"],
           "rho_server": last[0]["rho_server"], "measured_s": measured, "predicted_s": predicted,
           "error": (measured - predicted) / predicted if predicted > 0 else None, "n_layers": n_layers}
    return problems, fig


def check(fig: dict[str, Any], node_id: str, max_error: float | None, expect_knobs: bool) -> list[str]:
    problems = []
    if max_error is not None and (fig["error"] is None or abs(fig["error"]) > max_error):
        problems.append(f"{node_id}: prediction error {fig['error']} exceeds {max_error:.0%}")
    if expect_knobs:
        n = fig["n_layers"]
        if not (0 < fig["split"] < (n if n else fig["split"] + 1)):
            problems.append(f"{node_id}: split {fig['split']} puts no layers on one side (n = {n})")
        if fig["rho"] >= 1.0 and fig["rho_server"] >= 1.0:
            problems.append(f"{node_id}: plan prunes nothing (rho = rho~ = 1)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("/results"))
    ap.add_argument("--controller", default="http://controller:8080")
    ap.add_argument("--agents", default="device-1,device-2")
    ap.add_argument("--max-error", type=float, default=None)
    ap.add_argument("--expect-knobs", action="store_true")
    ap.add_argument("--expect-link", default=None)
    args = ap.parse_args(argv)
    nodes = {n["node_id"]: n for n in _get(f"{args.controller}/v1/nodes")}
    problems: list[str] = []
    print(f"{'agent':<10} {'records':>7} {'versions':<10} {'L':>2} {'rho':>6} {'rho~':>6} "
          f"{'predicted':>10} {'measured':>10} {'error':>7}  applied clocks / power")
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
        problems += check(fig, node_id, args.max_error, args.expect_knobs)
        applied = node.get("applied") or {}
        err = f"{fig['error']:+.1%}" if fig["error"] is not None else "n/a"
        print(f"{node_id:<10} {fig['records']:>7} {fig['versions']!s:<10} {fig['split']:>2} {fig['rho']:>6.3f} "
              f"{fig['rho_server']:>6.3f} {fig['predicted_s'] * 1e3:>8.1f}ms {fig['measured_s'] * 1e3:>8.1f}ms "
              f"{err:>7}  f={applied.get('freq_device_hz', 0) / 1e6:.0f} MHz, p={applied.get('power_w', 0):.3f} W "
              f"({(node.get('applied_sources') or {}).get('power_w', '?')})")
        backend = node.get("profile", {}).get("link", {}).get("backend")
        if args.expect_link and backend != args.expect_link:
            problems.append(f"{node_id}: link backend {backend!r}, expected {args.expect_link!r}")
        if node.get("ack_error"):
            problems.append(f"{node_id}: ack error {node['ack_error']}")
    for p in problems:
        print(f"problem: {p}")
    print("report: " + ("FAIL" if problems else "PASS"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
