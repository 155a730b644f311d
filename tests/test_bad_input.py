"""Bad input on the wire: precise status codes, the server keeps serving, other streams are unaffected."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import numpy as np
import pytest
from grpc import aio

from splitbed.codec import encode_float, encode_raw
from splitbed.v1 import inference_pb2, inference_pb2_grpc, tensor_pb2
from tests.launch import start_edge

SPLIT, RHO, H, S = 2, 0.8, 384, 12
MAX_BYTES = 1_000_000


@pytest.fixture(scope="module")
def server():
    proc = start_edge(SPLIT, RHO, extra=["--max-message-bytes", str(MAX_BYTES)])
    yield proc
    assert proc.stop() == 0, proc.output()


def good_request(rid: str = "ok", seq: int = S) -> inference_pb2.InferRequest:
    rng = np.random.default_rng(0)
    return inference_pb2.InferRequest(
        request_id=rid,
        identity=inference_pb2.SplitIdentity(model="minilm", split=SPLIT, rho_server=RHO, config_version=0),
        hidden=encode_float(rng.standard_normal((1, seq, H)).astype(np.float32), "fp32"),
        attention_mask=encode_raw(np.ones((1, seq), np.uint8)),
    )


def _nan(r):
    arr = np.zeros((1, S, H), np.float32)
    arr[0, 3, 7] = np.nan
    r.hidden.CopyFrom(encode_float(arr, "fp32"))


def _inf(r):
    arr = np.zeros((1, S, H), np.float16)
    arr[0, 0, 0] = np.inf
    r.hidden.data = arr.tobytes()
    r.hidden.dtype = tensor_pb2.DTYPE_FLOAT16
    r.hidden.encoding = tensor_pb2.ENCODING_FP16


def _set(**kw) -> Callable[[inference_pb2.InferRequest], None]:
    def mutate(r):
        for path, value in kw.items():
            obj = r
            *parents, leaf = path.split("__")
            for p in parents:
                obj = getattr(obj, p)
            if isinstance(value, list):
                del getattr(obj, leaf)[:]
                getattr(obj, leaf).extend(value)
            else:
                setattr(obj, leaf, value)
    return mutate


CASES = {
    "wrong dtype": (_set(hidden__dtype=tensor_pb2.DTYPE_INT64), grpc.StatusCode.INVALID_ARGUMENT, "dtype"),
    "wrong hidden size": (_set(hidden__shape=[1, S * 2, H // 2]), grpc.StatusCode.INVALID_ARGUMENT, "shape"),
    "wrong rank": (_set(hidden__shape=[S, H]), grpc.StatusCode.INVALID_ARGUMENT, "shape"),
    "byte length": (_set(hidden__shape=[1, S + 1, H]), grpc.StatusCode.INVALID_ARGUMENT, "byte length"),
    "NaN": (_nan, grpc.StatusCode.INVALID_ARGUMENT, "non-finite"),
    "Inf": (_inf, grpc.StatusCode.INVALID_ARGUMENT, "non-finite"),
    "negative dim": (_set(hidden__shape=[1, -S, H]), grpc.StatusCode.INVALID_ARGUMENT, "non-positive"),
    "huge claimed shape": (_set(hidden__shape=[1_000_000, 1_000, H]), grpc.StatusCode.RESOURCE_EXHAUSTED, "bytes"),
    "too long sequence": (lambda r: r.CopyFrom(good_request(r.request_id, seq=300)),
                          grpc.StatusCode.INVALID_ARGUMENT, "sequence length"),
    "mask values": (_set(attention_mask__data=bytes([2] * S)), grpc.StatusCode.INVALID_ARGUMENT, "0 or 1"),
    "mask shape": (_set(attention_mask__shape=[1, S - 1]), grpc.StatusCode.INVALID_ARGUMENT, "attention_mask"),
    "int8 without scales": (lambda r: r.hidden.CopyFrom(
        tensor_pb2.Tensor(data=bytes(S * H), dtype=tensor_pb2.DTYPE_INT8, shape=[1, S, H],
                          encoding=tensor_pb2.ENCODING_INT8)), grpc.StatusCode.INVALID_ARGUMENT, "scales"),
    "missing hidden": (lambda r: r.ClearField("hidden"), grpc.StatusCode.INVALID_ARGUMENT, "missing"),
    "empty request id": (_set(request_id=""), grpc.StatusCode.INVALID_ARGUMENT, "request_id"),
    "split not served": (_set(identity__split=4), grpc.StatusCode.FAILED_PRECONDITION, "split 4"),
    "ratio not served": (_set(identity__rho_server=0.5), grpc.StatusCode.FAILED_PRECONDITION, "ratio"),
    "unknown config version": (_set(identity__config_version=99), grpc.StatusCode.FAILED_PRECONDITION, "version 99"),
    "unknown model": (_set(identity__model="gpt"), grpc.StatusCode.FAILED_PRECONDITION, "model"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_request_is_rejected_and_others_unaffected(server, case):
    mutate, code, words = CASES[case]
    async with aio.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        healthy = stub.Infer()
        await healthy.write(good_request("before"))
        assert (await healthy.read()).request_id == "before"

        bad_stream = stub.Infer()
        bad = good_request("bad")
        mutate(bad)
        await bad_stream.write(bad)
        with pytest.raises(aio.AioRpcError) as info:
            await bad_stream.read()
        assert info.value.code() == code, info.value.details()
        assert words.lower() in info.value.details().lower(), info.value.details()

        # The other agent's stream, opened before the bad one, goes on.
        await healthy.write(good_request("after"))
        resp = await healthy.read()
        assert resp.request_id == "after" and list(resp.embedding.shape) == [1, H]
        await healthy.done_writing()


async def test_oversized_message_is_refused_by_limit(server):
    big = good_request("big")
    big.hidden.data = bytes(MAX_BYTES + 10)
    async with aio.insecure_channel(server.address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        call = stub.Infer()
        await call.write(big)
        with pytest.raises(aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        ok = stub.Infer()
        await ok.write(good_request("still-serving"))
        assert (await ok.read()).request_id == "still-serving"


async def test_many_concurrent_agents(server):
    async def agent(i: int) -> int:
        # Each agent is its own client connection, as separate agent processes are (the server bounds streams
        # per connection; channels of one process to one address would share one).
        async with aio.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            call = inference_pb2_grpc.InferenceServiceStub(channel).Infer()
            for j in range(5):
                await call.write(good_request(f"{i}-{j}"))
                assert (await call.read()).request_id == f"{i}-{j}"
            await call.done_writing()
        return 5

    assert sum(await asyncio.gather(*(agent(i) for i in range(6)))) == 30
