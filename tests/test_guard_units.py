"""Units of the edge guards and the interceptor's catch-all (a real in-process gRPC server on a free port)."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from grpc import aio

from edge_server.admission import Admission, Bounds, FairGate
from edge_server.fair_compute import row_chunks
from edge_server.replay import ReplayWindow
from splitbed.errors import ResourceExhausted
from splitbed.grpc_catchall import UNHANDLED
from splitbed.grpc_server import start_server
from splitbed.v1 import inference_pb2, inference_pb2_grpc


async def test_fair_gate_serves_peers_round_robin():
    gate = FairGate(1)
    await gate.acquire("busy")  # the one slot is taken
    order: list[str] = []

    async def turn(peer: str) -> None:
        await gate.acquire(peer)
        order.append(peer)
        gate.release()

    tasks = [asyncio.create_task(turn("flood")) for _ in range(5)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(turn("small")))
    await asyncio.sleep(0)
    gate.release()
    await asyncio.gather(*tasks)
    assert order.index("small") == 1  # second, not after the five flood requests


def test_admission_bounds_streams_and_pending_bytes():
    adm = Admission(Bounds(max_streams=3, max_streams_per_peer=1, max_pending=2, max_pending_bytes=100))
    with adm.stream("a"), adm.stream("b"):
        with pytest.raises(ResourceExhausted, match="per-peer"), adm.stream("a"):
            pass
        with adm.stream("c"), pytest.raises(ResourceExhausted, match="3 open streams"), adm.stream("d"):
            pass
    with adm.request(80):
        with pytest.raises(ResourceExhausted, match="bytes"), adm.request(30):
            pass
        with adm.request(10), pytest.raises(ResourceExhausted, match="pending"), adm.request(1):
            pass
    assert adm.pending == 0 and adm.pending_bytes == 0 and adm.total_streams == 0


def test_row_chunks_cover_the_batch():
    assert row_chunks(5, 100, 256) == [(0, 2), (2, 4), (4, 5)]
    assert row_chunks(3, 512, 256) == [(0, 1), (1, 2), (2, 3)]


async def test_replay_window_is_bounded():
    window = ReplayWindow(per_run=3, max_runs=2)
    calls = 0

    async def serve() -> inference_pb2.InferResponse:
        nonlocal calls
        calls += 1
        return inference_pb2.InferResponse(request_id="x")

    for run in ("r1", "r2", "r3"):
        for seq in range(1, 6):
            await window.answer(inference_pb2.InferRequest(request_id="x", run_id=run, seq=seq), serve)
    assert len(window) == 6 and calls == 15
    again = await window.answer(inference_pb2.InferRequest(request_id="y", run_id="r3", seq=5), serve)
    assert again.replayed and calls == 15


class Broken(inference_pb2_grpc.InferenceServiceServicer):
    async def GetInfo(self, request, context):  # noqa: N802
        raise RuntimeError("a bug")


async def test_foreign_exception_is_internal_logged_and_counted(caplog):
    def register(server: aio.Server) -> str:
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(Broken(), server)
        return "splitbed.v1.InferenceService"

    managed = await start_server([register], host="127.0.0.1", port=0)
    before = UNHANDLED.labels("/splitbed.v1.InferenceService/GetInfo", "RuntimeError")._value.get()
    try:
        async with aio.insecure_channel(f"127.0.0.1:{managed.port}") as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            with caplog.at_level(logging.ERROR), pytest.raises(aio.AioRpcError) as info:
                await stub.GetInfo(inference_pb2.GetInfoRequest(), metadata=(("x-request-id", "req-42"),))
    finally:
        await managed.stop()
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "RuntimeError" in info.value.details() and "req-42" in info.value.details()
    assert UNHANDLED.labels("/splitbed.v1.InferenceService/GetInfo", "RuntimeError")._value.get() == before + 1
    assert any("req-42" in r.getMessage() and r.exc_info for r in caplog.records)
