# ruff: noqa: E402 - the OpenMP spinning bound must be set before torch is imported
"""Co-inference overhead: two processes over gRPC on loopback vs the same split in one process.

Both sides run MiniLM (real weights) at a fixed sequence length; the baseline
runs device part then server part in this process, measured in the same run.
Prints median end-to-end latency, the ratio, and the absolute time added.
Target: ratio <= 1.10 with at most 1 ms added. With --contention: the
ratio with one CPU hog beside the two sides, unpinned and pinned with
--cpus auto, against the target <= 1.3 (issue 12).
"""

from __future__ import annotations

from splitbed.omp import bound_openmp_spinning

# Before torch loads its OpenMP runtime: the same spinning bound the agent and the server use.
bound_openmp_spinning()

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from device_agent.runner import DeviceRunner
from device_agent.samples import builtin_sample
from device_agent.settings import AgentSettings
from splitbed.affinity import resolve_cpus
from splitbed.model import load_server_part

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the source-checkout launcher lives in tests/
from tests.launch import start_edge

console = Console(width=140)


def one_process(runner: DeviceRunner, server_part, inputs: list, n: int, parts: list) -> list[float]:
    times = []
    for i in range(n):
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        with torch.inference_mode():
            h = runner.state.part(x["input_ids"], x["attention_mask"], x.get("token_type_ids"))
            t1 = time.perf_counter()
            server_part(h, x["attention_mask"])
        t2 = time.perf_counter()
        times.append(t2 - t0)
        parts.append((t1 - t0, t2 - t1))
    return times


async def two_process(runner: DeviceRunner, inputs: list, n: int, records: list) -> list[float]:
    times = []
    for i in range(n):
        rec = await runner.infer_one(inputs[i % len(inputs)], f"bench-{i}")
        times.append(rec.timings.e2e_s)
        records.append(dataclasses.asdict(rec.timings))
    return times


async def measure(split: int, encoding: str, n: int, seq: int, threads: int, rounds: int) -> dict:
    edge = start_edge(split, 1.0, threads=threads)
    try:
        runner = DeviceRunner(
            AgentSettings(server=edge.address, split=split, encoding=encoding, seq_len=seq, warmup=0, threads=threads)
        )
        await runner.connect()
        server_part = load_server_part(runner.source, split)
        server_part.eval()
        inputs = runner.prepare(builtin_sample()[:16])
        await two_process(runner, inputs, 10, [])
        one_process(runner, server_part, inputs, 10, [])
        base: list[float] = []
        co: list[float] = []
        parts: list[tuple[float, float]] = []
        recs: list[dict] = []
        # Interleave rounds so drift on a shared machine hits both arms alike.
        for _ in range(rounds):
            base += one_process(runner, server_part, inputs, n // rounds, parts)
            co += await two_process(runner, inputs, n // rounds, recs)
        await runner.close()
    finally:
        edge.stop()
    b, c = statistics.median(base), statistics.median(co)
    return {
        "split": split,
        "encoding": encoding,
        "seq_len": seq,
        "requests": len(co),
        "one_process_median_s": b,
        "two_process_median_s": c,
        "ratio": c / b,
        "added_s": c - b,
        "breakdown_median_s": breakdown(parts, recs),
    }


async def measure_contended(split: int, n: int, seq: int, rounds: int, *, hog: bool, pinned: bool) -> dict:
    """fp32 two-process / one-process ratio with one busy process beside them (`hog`), the agent and the server
    pinned to their halves of the cores (`pinned`, as `--cpus auto`) or not. One torch thread per side: the
    sides then fight the hog, not each other's thread pools. The one-process baseline is never pinned."""
    every = os.sched_getaffinity(0)
    device_cpus = resolve_cpus("auto", "device", every) if pinned else None
    edge = start_edge(split, 1.0, threads=1, extra=["--cpus", "auto"] if pinned else [])
    try:
        if device_cpus:  # the agent's compute thread, started by its first request, inherits this
            os.sched_setaffinity(0, device_cpus)
        runner = DeviceRunner(AgentSettings(server=edge.address, split=split, encoding="fp32", seq_len=seq,
                                            warmup=0, threads=1))
        await runner.connect()
        inputs = runner.prepare(builtin_sample()[:16])
        await two_process(runner, inputs, 5, [])  # starts the compute thread (pinned with the main one)
        os.sched_setaffinity(0, every)
        server_part = load_server_part(runner.source, split)
        server_part.eval()
        one_process(runner, server_part, inputs, 5, [])
        base: list[float] = []
        co: list[float] = []
        for _ in range(rounds):
            base += one_process(runner, server_part, inputs, n // rounds, [])
            co += await two_process(runner, inputs, n // rounds, [])
        await runner.close()
    finally:
        os.sched_setaffinity(0, every)
        edge.stop()
    b, c = statistics.median(base), statistics.median(co)
    return {"hog": hog, "pinned": pinned, "device_cpus": sorted(device_cpus or []), "requests": len(co),
            "one_process_median_s": b, "two_process_median_s": c, "ratio": c / b}


def contention(args: argparse.Namespace) -> int:
    """The co-location table: quiet, with a hog, with a hog and pinning; the ratio against 1.3."""
    torch.set_num_threads(1)
    rows = []
    for hog, pinned in ((False, False), (True, False), (True, True)):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if hog else None
        try:
            rows.append(asyncio.run(measure_contended(args.split, args.requests, args.seq_len, args.rounds,
                                                      hog=hog, pinned=pinned)))
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    table = Table(title=f"co-located sides with a CPU hog, MiniLM seq {args.seq_len}, split {args.split}, fp32, "
                        f"{len(os.sched_getaffinity(0))} cores (measured: perf_counter; host shared with other "
                        "work, so 'quiet' is not an idle host)")
    for col in ("hog", "--cpus", "one process (ms)", "two processes (ms)", "ratio", "target <= 1.3"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row("yes" if r["hog"] else "no", "auto " + str(r["device_cpus"]) if r["pinned"] else "none",
                      f"{r['one_process_median_s'] * 1e3:.1f}", f"{r['two_process_median_s'] * 1e3:.1f}",
                      f"{r['ratio']:.2f}", ("[green]met" if r["ratio"] <= 1.3 else "[red]missed") if r["hog"] else "")
    console.print(table)
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=2)
    return 0


def breakdown(parts: list[tuple[float, float]], recs: list[dict]) -> dict[str, float]:
    med = statistics.median
    return {
        "device_compute_1p_s": med(p[0] for p in parts),
        "device_compute_2p_s": med(r["device_compute_s"] for r in recs),
        "server_compute_1p_s": med(p[1] for p in parts),
        "server_compute_2p_s": med(r["server_compute_s"] for r in recs),
        "encode_s": med(r["encode_s"] for r in recs),
        "transfer_s": med(r["transfer_s"] for r in recs),
        "server_decode_queue_s": med(r["server_other_s"] for r in recs),
        "response_decode_s": med(r["response_decode_s"] for r in recs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--split", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="bench/results/overhead.json")
    parser.add_argument("--contention", action="store_true",
                        help="instead: the ratio with one busy process beside the sides, with and without --cpus "
                        "pinning (target <= 1.3); written to bench/results/overhead_contention.json")
    args = parser.parse_args()
    if args.contention:
        if args.out == parser.get_default("out"):
            args.out = "bench/results/overhead_contention.json"
        return contention(args)
    torch.set_num_threads(args.threads)
    rows = [
        asyncio.run(measure(args.split, enc, args.requests, args.seq_len, args.threads, args.rounds))
        for enc in ("fp32", "fp16")
    ]
    table = Table(
        title=f"co-inference overhead, MiniLM seq {args.seq_len}, split {args.split} (measured: perf_counter, loopback)"
    )
    for col in ("encoding", "requests", "one process (ms)", "two processes (ms)", "ratio", "added (ms)", "target"):
        table.add_column(col, justify="right")
    for r in rows:
        ok = r["ratio"] <= 1.10 and r["added_s"] <= 1e-3
        table.add_row(
            r["encoding"],
            str(r["requests"]),
            f"{r['one_process_median_s'] * 1e3:.2f}",
            f"{r['two_process_median_s'] * 1e3:.2f}",
            f"{r['ratio']:.3f}",
            f"{r['added_s'] * 1e3:.2f}",
            "[green]met" if ok else "[red]missed",
        )
    console.print(table)
    detail = Table(title="where the added time goes (medians, ms; 1p = one process, 2p = two processes)")
    for col in ("encoding", "device 1p", "device 2p", "server 1p", "server 2p", "encode", "transfer",
                "server decode+queue", "answer decode"):
        detail.add_column(col, justify="right")
    for r in rows:
        d = {k: v * 1e3 for k, v in r["breakdown_median_s"].items()}
        detail.add_row(r["encoding"], f"{d['device_compute_1p_s']:.2f}", f"{d['device_compute_2p_s']:.2f}",
                       f"{d['server_compute_1p_s']:.2f}", f"{d['server_compute_2p_s']:.2f}", f"{d['encode_s']:.2f}",
                       f"{d['transfer_s']:.2f}", f"{d['server_decode_queue_s']:.2f}", f"{d['response_decode_s']:.2f}")
    console.print(detail)
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
