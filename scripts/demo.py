"""`make demo`: the testbed's processes on loopback with the embedded defaults.

Starts an edge server, runs a device agent on the built-in sample at a
non-trivial split and pruning ratio (with fidelity against the unpruned,
unsplit model), prints the table, stops every process, and exits 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from splitbed.launch import ROOT, child_env, start_edge

console = Console()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", type=int, default=3)
    parser.add_argument("--rho", type=float, default=0.9, help="device ratio")
    parser.add_argument("--rho-server", type=float, default=0.8, help="server ratio")
    parser.add_argument("--method", default="structured-magnitude")
    parser.add_argument("--encoding", default="fp16")
    args = parser.parse_args()

    console.rule("[bold]split-inference testbed demo (standalone: explicit flags)")
    console.print(f"edge server: all-MiniLM-L6-v2, layers [{args.split}, 6) + pooling, rho~={args.rho_server}")
    edge = start_edge(args.split, args.rho_server, args.method)
    out = Path(tempfile.mkdtemp(prefix="splitbed-demo-")) / "results.jsonl"
    try:
        console.print(f"edge server up on {edge.address}; device agent: embeddings + layers [0, {args.split}), "
                      f"rho={args.rho}, {args.encoding} uplink")
        agent = subprocess.run(
            [sys.executable, "-m", "device_agent", "run", "--server", edge.address, "--model", "minilm",
             "--split", str(args.split), "--rho", str(args.rho), "--method", args.method,
             "--encoding", args.encoding, "--out", str(out), "--reference"],
            env=child_env(), cwd=ROOT, check=False,
        )
        if agent.returncode != 0:
            console.print(f"[red]device agent failed with {agent.returncode}")
            return agent.returncode
    finally:
        code = edge.stop()
        console.print(f"edge server stopped (exit {code})")
    console.print(f"[green]done: records in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
