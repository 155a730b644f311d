"""Edge server under overload: RSS and a small request's latency while one client floods it.

One client opens `--streams` streams on one channel (one connection) and sends
large messages on each, over and over for `--seconds`; a second channel (its
own connection) sends a small request every 0.25 s. The edge server's RSS is
sampled every 50 ms (psutil, /proc): baseline before the flood, peak during
it, and `--settle-s` after the flood stopped.

Cases: `valid` sends the largest valid request (batch 64 x seq 256 x 384 fp32,
24 MiB); `invalid` sends 30 MiB messages with a shape that does not match
(every one is rejected), 3 per stream. Targets (issue 9): RSS under baseline
+ 1 GiB at the peak and after; small request p99 under 1 s.

`--edge-root DIR` runs the edge server from another checkout (e.g. the
previous main, for before/after figures). Results: bench/results/overload_<case>.json.

Usage: python bench/overload.py [--case valid|invalid] [--streams 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psutil
from grpc import aio

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MIB = 1024 * 1024
INFER = "/splitbed.v1.InferenceService/Infer"
SPLIT, H = 5, 384
OPTIONS = [("grpc.max_send_message_length", 128 * MIB), ("grpc.max_receive_message_length", 128 * MIB),
           ("grpc.use_local_subchannel_pool", 1)]


def request_bytes(rid: str, batch: int, seq: int, *, bad_shape: bool = False, nbytes: int = 0) -> bytes:
    from splitbed.codec import encode_float, encode_raw
    from splitbed.v1 import inference_pb2

    hidden = encode_float(np.random.default_rng(0).standard_normal((batch, seq, H)).astype(np.float32), "fp32")
    if bad_shape:  # bytes of another size than the shape says
        hidden.data = bytes(nbytes)
    req = inference_pb2.InferRequest(
        request_id=rid, identity=inference_pb2.SplitIdentity(model="minilm", split=SPLIT, rho_server=1.0),
        hidden=hidden, attention_mask=encode_raw(np.ones((batch, seq), np.uint8)))
    return req.SerializeToString()


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except psutil.Error:
                return
            time.sleep(0.05)


async def flood_stream(channel: aio.Channel, payload: bytes, until: float, per_stream: int | None,
                       counts: dict[str, int]) -> None:
    call_fn = channel.stream_stream(INFER, request_serializer=None, response_deserializer=None)
    sent = 0
    while time.monotonic() < until and (per_stream is None or sent < per_stream):
        call = call_fn(timeout=max(1.0, until - time.monotonic()))
        try:
            while time.monotonic() < until and (per_stream is None or sent < per_stream):
                await call.write(payload)
                sent += 1
                await call.read()
                counts["answered"] += 1
        except grpc.RpcError as exc:
            counts[exc.code().name] = counts.get(exc.code().name, 0) + 1
            counts.setdefault(f"{exc.code().name} (first)", exc.details())  # type: ignore[arg-type]
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                await asyncio.sleep(0.5)
        except asyncio.InvalidStateError:
            counts["ended"] = counts.get("ended", 0) + 1
        finally:
            call.cancel()


async def small_requests(address: str, until: float, latencies: list[float], failures: list[str],
                         server_s: list[float]) -> None:
    from splitbed.v1 import inference_pb2

    payload = request_bytes("small", 1, 16)
    async with aio.insecure_channel(address, options=OPTIONS) as channel:
        call_fn = channel.stream_stream(INFER, request_serializer=None,
                                        response_deserializer=inference_pb2.InferResponse.FromString)
        while time.monotonic() < until:
            t0 = time.perf_counter()
            call = call_fn(timeout=30)
            try:
                await call.write(payload)
                st = (await call.read()).timings
                latencies.append(time.perf_counter() - t0)
                server_s.append((st.sent_unix_ns - st.received_unix_ns) / 1e9)
                if os.environ.get("OVERLOAD_DEBUG"):
                    print(f"small {latencies[-1]:.3f} server {server_s[-1]:.3f} decode {st.decode_s:.3f} "
                          f"queue {st.queue_s:.3f} compute {st.server_compute_s:.3f}", flush=True)
            except grpc.RpcError as exc:
                failures.append(exc.code().name)
                latencies.append(time.perf_counter() - t0)
            finally:
                call.cancel()
            await asyncio.sleep(0.25)


async def drive(address: str, args: argparse.Namespace) -> dict[str, Any]:
    if args.case == "valid":
        payload, per_stream = request_bytes("big", 64, 256), None
    else:
        payload, per_stream = request_bytes("bad", 1, 16, bad_shape=True, nbytes=30 * MIB), 3
    counts: dict[str, int] = {"answered": 0}
    latencies: list[float] = []
    failures: list[str] = []
    server_s: list[float] = []
    until = time.monotonic() + args.seconds
    async with aio.insecure_channel(address, options=OPTIONS) as channel:
        await asyncio.gather(
            small_requests(address, until, latencies, failures, server_s),
            *(flood_stream(channel, payload, until, per_stream, counts) for _ in range(args.streams)))
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"flood": counts, "small": {"requests": len(latencies), "failures": failures,
                                       "p50_s": float(np.percentile(lat, 50)), "p99_s": float(np.percentile(lat, 99)),
                                       "max_s": float(np.max(lat)),
                                       "server_p99_s": float(np.percentile(server_s, 99)) if server_s else None}}


def start_edge(edge_root: Path, extra: list[str]) -> Any:
    """The edge server of the tree at `edge_root` (its own modules first: cwd and PYTHONPATH)."""
    sys.path.insert(0, str(ROOT))  # the source-checkout launcher lives in tests/
    from tests.launch import Proc, child_env, wait_healthy, wait_port_file

    tmp = Path(tempfile.mkdtemp(prefix="overload-"))
    env = child_env(1)
    env["PYTHONPATH"] = str(edge_root)
    popen = subprocess.Popen(
        [sys.executable, "-m", "edge_server", "serve", "--split", str(SPLIT), "--rho", "1.0", "--host", "127.0.0.1",
         "--port", "0", "--port-file", str(tmp / "port"), *extra],
        cwd=edge_root, env=env, stdout=(tmp / "log").open("wb"), stderr=subprocess.STDOUT)
    port = wait_port_file(popen, tmp / "port", tmp / "log", 180, "edge_server")[0]
    proc = Proc(popen, port, tmp / "log")
    wait_healthy(proc.address, timeout=120)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=["valid", "invalid"], default="valid")
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle-s", type=float, default=10.0)
    parser.add_argument("--edge-root", type=Path, default=ROOT)
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--edge-args", default="", help="extra edge-server flags, e.g. '--max-streams-per-peer 4'")
    args = parser.parse_args()
    edge = start_edge(args.edge_root.resolve(), args.edge_args.split())
    try:
        sampler = RssSampler(edge.popen.pid)
        time.sleep(2.0)
        baseline = sampler.rss()
        sampler.start()
        result = asyncio.run(drive(edge.address, args))
        time.sleep(args.settle_s)
        after = sampler.rss()
        sampler.stop.set()
    finally:
        edge.stop()
    mem = {"baseline_mib": baseline / MIB, "peak_mib": sampler.peak / MIB, "after_mib": after / MIB,
           "peak_over_baseline_mib": (sampler.peak - baseline) / MIB,
           "after_over_baseline_mib": (after - baseline) / MIB}
    out = {"case": args.case, "streams": args.streams, "seconds": args.seconds, "edge": args.label,
           "rss_source": "measured: psutil RSS of the edge process, sampled every 50 ms", **result, "memory": mem,
           "targets": {"rss_over_baseline_mib": 1024, "small_p99_s": 1.0}}
    out["met"] = {"peak": mem["peak_over_baseline_mib"] < 1024, "after": mem["after_over_baseline_mib"] < 1024,
                  "small_p99": result["small"]["p99_s"] < 1.0}
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = "" if args.edge_root.resolve() == ROOT else "_before"
    (RESULTS / f"overload_{args.case}{tag}.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
