# ruff: noqa: E402 - the OpenMP spinning bound must be set before torch is imported
"""Pinned-plan prediction error at every split L = 0..n, emulated clocks (issue 12: <= 5% at every split).

One controller and one edge server (emulated clock) run as real processes; a
device agent (emulated clock) joins at one sequence length and each split is
pinned in turn with a transmit power, odd splits also with a device clock off
the hardware's steps (the plan is predicted at the step really applied).
Prints each plan's error and the largest |error| per split against the 5%
target. Predictions include the measured per-request fixed cost T_fix.
Timings are from a shared host (its load is printed): compute is stretched to
the emulated clocks, so they hold while the host keeps up with them.
"""

from __future__ import annotations

from splitbed.omp import bound_openmp_spinning

bound_openmp_spinning()

import argparse
import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the source-checkout launcher lives in tests/
from tests.prediction_run import error_table, host_load, measure_lengths

TARGET = 0.05
console = Console(width=160)


def plans(n_layers: int, power_w: float, off_step_hz: float) -> list[dict[str, float]]:
    out: list[dict[str, float]] = []
    for split in range(n_layers + 1):
        pins: dict[str, float] = {"split": split, "power_w": power_w}
        if split % 2:
            pins["freq_device_hz"] = off_step_hz
        out.append(pins)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seq-len", type=int, default=128, help="tokens the agent sends")
    parser.add_argument("--n-layers", type=int, default=6, help="encoder layers of the model (MiniLM: 6)")
    parser.add_argument("--power-w", type=float, default=0.2, help="pinned transmit power, W")
    parser.add_argument("--off-step-hz", type=float, default=7.5e8,
                        help="device clock pinned at odd splits; snapped to the profile's steps where it has them")
    parser.add_argument("--requests", type=int, default=10, help="measured requests per plan")
    parser.add_argument("--device-profile", default="paper-device", help="the agent's emulated clock profile")
    parser.add_argument("--server-profile", default="edge-cpu", help="the edge server's emulated clock profile")
    parser.add_argument("--out", default="bench/results/prediction.json")
    args = parser.parse_args()
    console.print(f"device profile {args.device_profile}, server profile {args.server_profile} (emulated clocks), "
                  f"{args.seq_len} tokens; host {host_load()} at start")
    rows = measure_lengths([args.seq_len], lambda _: plans(args.n_layers, args.power_w, args.off_step_hz),
                           out=Path(args.out), requests=args.requests, device_profile=args.device_profile,
                           server_profile=args.server_profile, say=console.print)
    for r in rows:
        r["split"] = int(r["pins"]["split"])
    table, ok = error_table(rows, "split", TARGET,
                            f"pinned-plan prediction error per split (target |error| <= {TARGET:.0%}; emulated "
                            f"clocks, shared host, {host_load()} at end)")
    console.print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
