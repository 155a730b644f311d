"""InferenceService: thin gRPC layer; validation in `splitbed.request_validation`, model work in a worker pool."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from grpc import aio

from edge_server.admission import Admission, Bounds, declared_bytes
from edge_server.fair_compute import FairCompute
from edge_server.memtrim import collect_soon
from edge_server.registry import PartRegistry
from edge_server.replay import ReplayWindow
from splitbed.codec import Limits, encode_float
from splitbed.errors import SplitbedError, Unavailable
from splitbed.grpc_errors import status_for
from splitbed.metrics import Metrics
from splitbed.request_validation import validate_request
from splitbed.side.hardware import ComputeHardware
from splitbed.v1 import inference_pb2, inference_pb2_grpc

logger = logging.getLogger(__name__)

INLINE_DECODE_BYTES = 256 * 1024


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(
        self,
        registry: PartRegistry,
        executor: ThreadPoolExecutor,
        *,
        limits: Limits,
        max_batch: int,
        info: inference_pb2.ServerInfo,
        hw: ComputeHardware,
        metrics: Metrics,
        bounds: Bounds | None = None,
        decode_executor: ThreadPoolExecutor | None = None,
        compute_slots: int = 1,
        chunk_tokens: int = 256,
    ) -> None:
        self._hw = hw
        self._metrics = metrics
        self._registry = registry
        self._executor = executor
        self._limits = limits
        self._max_batch = max_batch
        self._info = info
        self.requests_served = 0
        self.requests_seen = 0
        self.admission = Admission(bounds or Bounds())
        self.replay = ReplayWindow()
        self.compute = FairCompute(executor, compute_slots, chunk_tokens=chunk_tokens)
        self._decode = decode_executor or executor
        self.draining = False  # set on SIGTERM: streams end after their request in flight

    async def Infer(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[inference_pb2.InferRequest], context: aio.ServicerContext
    ) -> AsyncIterator[inference_pb2.InferResponse]:
        loop = asyncio.get_running_loop()
        peer = context.peer() or "unknown"
        requests = aiter(request_iterator)
        # A stream past its bound is refused after its first request is read, not before: a refusal that
        # races the client's first write reaches a grpc.aio client as INTERNAL "Internal error from Core"
        # instead of RESOURCE_EXHAUSTED with its retry hint (grpc/grpc#36066).
        read_any = False
        try:
            request: inference_pb2.InferRequest | None = await anext(requests, None)
            read_any = request is not None
            with self.admission.stream(peer):
                while request is not None:
                    self.requests_seen += 1
                    if self.draining:
                        raise Unavailable("edge server is shutting down; reconnect and resend")
                    yield await self.replay.answer(request, functools.partial(self._serve_one, request, loop, peer))
                    request = await anext(requests, None)
        except SplitbedError as exc:
            self._metrics.errors.labels("server", status_for(exc).name).inc()
            if read_any:  # a request was read: the error's frames hold its buffers in a cycle
                collect_soon()
            raise

    async def _serve_one(
        self, request: inference_pb2.InferRequest, loop: asyncio.AbstractEventLoop, peer: str = ""
    ) -> inference_pb2.InferResponse:
        received_ns = time.time_ns()
        t0 = time.perf_counter()
        ident = request.identity
        with self._registry.lease(
            version=ident.config_version, model=ident.model, split=ident.split, rho=ident.rho_server
        ) as served, self.admission.request(nbytes := declared_bytes(request, self._limits.max_bytes)):
            validate = functools.partial(validate_request, request, limits=self._limits,
                                         hidden_size=self._info.hidden_size, max_seq_len=self._info.max_seq_len,
                                         max_batch=self._max_batch)
            # Large messages are decoded on the decode pool; small ones (microseconds) right here, so they
            # never queue behind a flood of large ones.
            hidden, mask = validate() if nbytes < INLINE_DECODE_BYTES else await loop.run_in_executor(
                self._decode, validate)
            decode_s = time.perf_counter() - t0
            queued = time.perf_counter()
            embedding, timing = await self.compute.run(peer, self._hw, served.part, hidden, mask)
        queue_s = timing.started_s - queued
        self.requests_served += 1
        self._metrics.observe_stages({"decode_s": decode_s, "queue_s": queue_s, "server_compute_s": timing.compute_s})
        if timing.energy is not None:
            self._metrics.observe_energy("server", timing.energy.joules, timing.energy.source)
        return inference_pb2.InferResponse(
            request_id=request.request_id,
            embedding=encode_float(embedding, "fp32"),
            config_version=served.version,
            rho_server_applied=served.rho,
            server_energy_j=timing.energy.joules if timing.energy else 0.0,
            server_energy_source=timing.energy.source if timing.energy else "",
            timings=inference_pb2.ServerTimings(
                decode_s=decode_s,
                queue_s=queue_s,
                server_compute_s=timing.compute_s,
                server_stretch_s=timing.stretch_s,
                received_unix_ns=received_ns,
                sent_unix_ns=time.time_ns(),
            ),
        )

    async def GetInfo(  # noqa: N802
        self, request: inference_pb2.GetInfoRequest, context: aio.ServicerContext
    ) -> inference_pb2.ServerInfo:
        info = inference_pb2.ServerInfo()
        info.CopyFrom(self._info)
        del info.parts[:]
        for s in self._registry.versions():
            info.parts.add(
                identity=inference_pb2.SplitIdentity(
                    model=s.model, split=s.split, rho_server=s.rho, method=s.method, config_version=s.version
                ),
                achieved_rho=float(getattr(getattr(s.part, "report", None), "achieved_rho", s.rho)),
                params=int(sum(p.numel() for p in s.part.parameters())) if hasattr(s.part, "parameters") else 0,
            )
        return info
