# ruff: noqa: E402 - the OpenMP spinning bound must be set before torch is imported
"""Co-inference overhead: two processes over gRPC on loopback vs the same split in one process.

Both sides run MiniLM (real weights) at a fixed sequence length; the baseline
runs device part then server part in this process, measured in the same run.
Prints median end-to-end latency, the ratio, and the absolute time added.
Target: ratio <= 1.10 with at most 1 ms added.
"""

from __future__ import annotations

from splitbed.omp import bound_openmp_spinning

# Before torch loads its OpenMP runtime: the same spinning bound the agent and the server use.
bound_openmp_spinning()

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from device_agent.runner import DeviceRunner
from device_agent.samples import builtin_sample
from device_agent.settings import AgentSettings
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
    args = parser.parse_args()
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
