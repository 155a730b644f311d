# ruff: noqa: E402 - the OpenMP spinning bound must be set before torch is imported
"""Predicted vs measured end-to-end latency at several sequence lengths, emulated clocks.

One controller and one edge server (emulated `edge-cpu` clock) run as real
processes; a device agent (emulated `paper-device` clock) joins at each
sequence length in turn and the pinned plans of the prediction test are
measured. Prints each plan's error and, per length, the largest |error|
against the target: within 5% at 32, 64, 128 and 256 tokens (issue 12).
Predictions include the measured per-request fixed cost T_fix (the agent's
probe, then its requests); the table shows it beside what was measured
outside the three modelled stages. Timings are from a shared host: compute is
stretched to the emulated clocks, so they hold while the host keeps up with
them; the host's load is printed at start and end.
"""

from __future__ import annotations

from splitbed.omp import bound_openmp_spinning

bound_openmp_spinning()

import argparse
import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the source-checkout launcher lives in tests/
from tests.prediction_run import PLANS, error_table, host_load, measure_lengths

TARGET = 0.05
console = Console(width=160)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seq-lens", default="32,64,128,256", help="comma-separated token counts")
    parser.add_argument("--requests", type=int, default=10, help="measured requests per plan")
    parser.add_argument("--device-profile", default="paper-device", help="the agent's emulated clock profile")
    parser.add_argument("--server-profile", default="edge-cpu", help="the edge server's emulated clock profile")
    parser.add_argument("--edge-args", default="", help="extra edge-server flags, space-separated")
    parser.add_argument("--out", default="bench/results/seq_prediction.json")
    args = parser.parse_args()
    lengths = [int(s) for s in args.seq_lens.split(",")]
    console.print(f"device profile {args.device_profile}, server profile {args.server_profile} (emulated clocks); "
                  f"host {host_load()} at start")
    rows = measure_lengths(lengths, lambda _: PLANS, out=Path(args.out), requests=args.requests,
                           device_profile=args.device_profile, server_profile=args.server_profile,
                           edge_args=args.edge_args.split(), say=console.print)
    table, ok = error_table(rows, "seq_len", TARGET,
                            f"prediction error per sequence length (target |error| <= {TARGET:.0%}; emulated "
                            f"clocks, shared host, {host_load()} at end)")
    console.print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
