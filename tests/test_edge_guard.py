"""The edge server's guards, against a real server process: replay window, admission, bad protobuf, drain."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from grpc import aio

from splitbed.codec import encode_float, encode_raw
from splitbed.resilience import RETRY_AFTER_KEY
from splitbed.v1 import inference_pb2, inference_pb2_grpc
from tests.launch import start_edge

SPLIT, H, S = 3, 384, 8


@pytest.fixture(scope="module")
def server():
    proc = start_edge(SPLIT, 1.0, extra=["--max-streams-per-peer", "2", "--max-streams", "3"])
    yield proc
    assert proc.stop() == 0, proc.output()


def request(rid: str, run_id: str = "", seq: int = 0, seed: int = 0) -> inference_pb2.InferRequest:
    rng = np.random.default_rng(seed)
    return inference_pb2.InferRequest(
        request_id=rid, run_id=run_id, seq=seq,
        identity=inference_pb2.SplitIdentity(model="minilm", split=SPLIT, rho_server=1.0),
        hidden=encode_float(rng.standard_normal((1, S, H)).astype(np.float32), "fp32"),
        attention_mask=encode_raw(np.ones((1, S), np.uint8)),
    )


async def _one(stub: inference_pb2_grpc.InferenceServiceStub, req: inference_pb2.InferRequest):
    call = stub.Infer()
    await call.write(req)
    resp = await call.read()
    await call.done_writing()
    return resp


async def _hold_the_peer_bound(stub: inference_pb2_grpc.InferenceServiceStub, prefix: str) -> list:
    """Open (and keep open) as many streams as the fixture's --max-streams-per-peer allows."""
    calls = []
    for i in range(2):
        call = stub.Infer()
        await call.write(request(f"{prefix}{i}"))
        await call.read()
        calls.append(call)
    return calls


async def test_resent_id_is_answered_from_the_window(server):
    async with aio.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        first = await _one(stub, request("a", "run-x", 7, seed=1))
        # Same id, other payload: the window answers, the payload is not run again.
        again = await _one(stub, request("a-resent", "run-x", 7, seed=2))
        other = await _one(stub, request("b", "run-x", 8, seed=2))
    assert not first.replayed and again.replayed and not other.replayed
    assert again.request_id == "a-resent"
    assert again.embedding.data == first.embedding.data != other.embedding.data


async def test_streams_past_the_per_peer_bound_get_resource_exhausted_with_a_hint(server):
    async with aio.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        open_calls = await _hold_the_peer_bound(stub, "s")
        extra = stub.Infer()
        await extra.write(request("extra"))
        with pytest.raises(aio.AioRpcError) as info:
            await extra.read()
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
        assert "per-peer" in info.value.details()
        hints = dict(info.value.trailing_metadata() or ())
        assert float(hints[RETRY_AFTER_KEY]) > 0
        # Another connection is another peer: still served.
        async with aio.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch2:
            resp = await _one(inference_pb2_grpc.InferenceServiceStub(ch2), request("other-peer"))
            assert resp.request_id == "other-peer"
        for call in open_calls:
            await call.done_writing()
        # The slots come back once the streams end.
        await asyncio.sleep(0.2)
        assert (await _one(stub, request("later"))).request_id == "later"


async def test_a_refused_stream_always_reports_resource_exhausted_not_internal(server):
    """The refusal waits for the stream's first request. Refused before it, about 2% of refusals raced the
    client's first write and reached it as INTERNAL "Internal error from Core" (grpc/grpc#36066), so 1000
    tries catch the old behaviour all but surely."""
    async with aio.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        open_calls = await _hold_the_peer_bound(stub, "hold")
        codes = []
        for i in range(1000):
            extra = stub.Infer()
            try:
                await extra.write(request(f"refused{i}"))
                await extra.read()
                codes.append(grpc.StatusCode.OK)
            except aio.AioRpcError as exc:
                codes.append(exc.code())
        for call in open_calls:
            await call.done_writing()
    assert set(codes) == {grpc.StatusCode.RESOURCE_EXHAUSTED}, {c.name: codes.count(c) for c in set(codes)}


@pytest.mark.parametrize("method", ["GetInfo", "Infer"])
async def test_undecodable_protobuf_is_invalid_argument(server, method):
    async with aio.insecure_channel(server.address) as channel:
        path = f"/splitbed.v1.InferenceService/{method}"
        garbage = b"\x0a\xff\xff\xff\xff\x0f\x01"  # field 1, length far past the end
        if method == "GetInfo":
            with pytest.raises(aio.AioRpcError) as info:
                await channel.unary_unary(path, request_serializer=None, response_deserializer=None)(garbage)
        else:
            call = channel.stream_stream(path, request_serializer=None, response_deserializer=None)()
            await call.write(garbage)
            with pytest.raises(aio.AioRpcError) as info:
                await call.read()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
        assert "protobuf" in info.value.details()


async def test_streams_that_send_nothing_are_bounded_per_connection(server):
    """Streams are admitted on their first request; until then HTTP/2 bounds them per connection
    (max_streams_per_peer + STREAM_HEADROOM): one connection cannot hold the server open with idle streams."""
    from edge_server.server import STREAM_HEADROOM

    async with aio.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        idle = [stub.Infer() for _ in range(2 + STREAM_HEADROOM)]
        for call in idle:
            await call.wait_for_connection()
        with pytest.raises(aio.AioRpcError) as info:  # the next stream on this connection waits for a slot
            await stub.GetInfo(inference_pb2.GetInfoRequest(), timeout=2.0)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        async with aio.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch2:
            info2 = await inference_pb2_grpc.InferenceServiceStub(ch2).GetInfo(inference_pb2.GetInfoRequest(),
                                                                               timeout=30)
            assert info2.hidden_size == H
        for call in idle:
            call.cancel()
        await asyncio.sleep(0.2)
        assert (await stub.GetInfo(inference_pb2.GetInfoRequest(), timeout=30)).hidden_size == H
