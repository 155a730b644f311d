"""A client of the edge server's InferenceService: one long-lived bidirectional stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from grpc import aio

from splitbed import aio_compat
from splitbed.errors import SplitbedError, Unavailable
from splitbed.grpc_errors import translate_rpc_error
from splitbed.grpc_server import channel_options
from splitbed.resilience import Keepalive, retry_after_s
from splitbed.tls import TlsFiles, aio_channel
from splitbed.v1 import inference_pb2, inference_pb2_grpc

logger = logging.getLogger(__name__)


class InferenceClient:
    """Sends one request at a time on a persistent stream and reads its answer.

    Requests on a stream are answered in order, so a write followed by a read
    pairs them; `request_id` is still checked so a protocol slip cannot pair
    an answer with the wrong input.
    """

    def __init__(self, address: str, *, max_message_bytes: int, timeout_s: float,
                 keepalive: Keepalive | None = None, tls: TlsFiles | None = None) -> None:
        self.address = address
        self._timeout_s = timeout_s
        options = channel_options(max_message_bytes) + (keepalive or Keepalive()).client_options()
        self._channel = aio_channel(address, tls or TlsFiles(), options=options)
        self._stub = inference_pb2_grpc.InferenceServiceStub(self._channel)
        self._call: aio.StreamStreamCall | None = None

    async def wait_ready(self, timeout_s: float = 30.0) -> inference_pb2.ServerInfo:
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout_s)
            return await self._stub.GetInfo(inference_pb2.GetInfoRequest(), timeout=timeout_s)
        except asyncio.TimeoutError:  # from wait_for; not the builtin TimeoutError on 3.10
            raise Unavailable(f"edge server {self.address} not reachable within {timeout_s:.0f} s") from None
        except grpc.RpcError as exc:
            raise translate_rpc_error(exc) from exc

    async def info(self) -> inference_pb2.ServerInfo:
        try:
            return await self._stub.GetInfo(inference_pb2.GetInfoRequest(), timeout=self._timeout_s)
        except grpc.RpcError as exc:
            raise translate_rpc_error(exc) from exc

    async def infer(self, request: inference_pb2.InferRequest) -> inference_pb2.InferResponse:
        if self._call is None:
            self._call = self._stub.Infer()
        call = self._call
        try:
            # asyncio.timeout, not wait_for: no extra task per request on the hot path.
            async with aio_compat.timeout(self._timeout_s):
                await call.write(request)
                response = await call.read()
        except grpc.RpcError as exc:
            self._call = None
            err = translate_rpc_error(exc)
            err.retry_after_s = retry_after_s(exc)
            raise err from exc
        except (asyncio.InvalidStateError, aio.UsageError) as exc:
            # Writing to a stream the server already ended ("RPC already finished"): a broken stream.
            self._call = None
            call.cancel()
            raise Unavailable(f"stream to {self.address} ended: {exc}") from None
        except TimeoutError:
            self._call = None
            call.cancel()
            raise Unavailable(f"no answer to {request.request_id} within {self._timeout_s:.1f} s") from None
        if response is aio.EOF:
            self._call = None
            code = await call.code()
            details = await call.details()
            raise Unavailable(f"stream closed by server: {code}: {details}")
        if response.request_id != request.request_id:
            raise SplitbedError(f"answer for {response.request_id!r} received for request {request.request_id!r}")
        return response

    async def close(self) -> None:
        if self._call is not None:
            with contextlib.suppress(grpc.RpcError, asyncio.InvalidStateError, aio.UsageError):
                await self._call.done_writing()
            self._call = None
        await self._channel.close()
