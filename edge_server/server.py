"""Build and run the edge server: load the part, start gRPC, follow the controller, serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from grpc import aio

from edge_server.admission import Bounds
from edge_server.memtrim import trim_forever
from edge_server.node import ServerNode
from edge_server.registry import PartRegistry, Served
from edge_server.servicer import InferenceServicer
from edge_server.settings import EdgeSettings
from splitbed.codec import Limits
from splitbed.control import ControlLink
from splitbed.grpc_server import ManagedServer, start_server
from splitbed.metrics import Metrics
from splitbed.model import load_server_part, resolve_model
from splitbed.resilience import Keepalive
from splitbed.stage import Stage
from splitbed.v1 import control_pb2, inference_pb2, inference_pb2_grpc

logger = logging.getLogger(__name__)

# Without BDP probing, HTTP/2 windows stay at their 64 KiB look-ahead: a stream this server is not reading
# (refused, or waiting for its turn) buffers 64 KiB here, not a whole large message.
TRANSPORT_OPTIONS = [("grpc.http2.bdp_probe", 0)]


class EdgeServer:
    """The edge process: a part registry, a worker pool, the stage hardware and the gRPC services."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.source = resolve_model(settings.model)
        self.registry = PartRegistry()
        self.executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="edge-compute")
        self.decoder = ThreadPoolExecutor(max_workers=settings.decode_workers, thread_name_prefix="edge-decode")
        self.stage = Stage(settings.clock, settings.clock_profile, settings.energy, pue=settings.pue,
                           phi=settings.power_coeff, host_flops_per_s=settings.host_flops_per_s)
        self.managed: ManagedServer | None = None
        self.servicer: InferenceServicer | None = None
        self.control: ControlLink | None = None
        self.metrics = Metrics("server")
        self._telemetry: asyncio.Task[None] | None = None
        self._trim: asyncio.Task[None] | None = None

    def load(self, version: int, split: int, rho: float, method: str) -> Served:
        """Load (and prune) the server part of `split`; blocking, call off the event loop."""
        part = load_server_part(
            self.source, split, rho=rho, method=method, device=self.settings.device, seed=self.settings.seed
        )
        part.eval()
        return Served(version=version, model=self.settings.model, split=split, rho=rho, method=method, part=part)

    def info(self) -> inference_pb2.ServerInfo:
        src = self.source
        return inference_pb2.ServerInfo(
            model=self.settings.model,
            n_layers=src.n_layers,
            hidden_size=src.hidden_size,
            max_seq_len=src.max_seq_len,
            max_message_bytes=self.settings.max_message_bytes,
            random_init=src.random_init,
            label=src.label,
        )

    async def start(self) -> int:
        s = self.settings
        loop = asyncio.get_running_loop()
        served = await loop.run_in_executor(self.executor, self.load, 0, s.split, s.rho, s.method)
        self.registry.install(served)
        self.servicer = InferenceServicer(
            self.registry,
            self.executor,
            limits=Limits(max_bytes=s.max_message_bytes),
            max_batch=s.max_batch,
            info=self.info(),
            stage=self.stage,
            metrics=self.metrics,
            bounds=Bounds(s.max_streams, s.max_streams_per_peer, s.max_pending, s.max_pending_bytes,
                          s.retry_after_s),
            decode_executor=self.decoder,
            compute_slots=s.workers,
            chunk_tokens=s.compute_chunk_tokens,
        )
        servicer = self.servicer

        def register(server: aio.Server) -> str:
            inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, server)
            return str(inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name)

        self.managed = await start_server(
            [register], host=s.host, port=s.port, max_message_bytes=s.max_message_bytes, grace_s=s.grace_s,
            options=[*Keepalive(s.keepalive_s, s.keepalive_timeout_s).server_options(), *TRANSPORT_OPTIONS],
        )
        self.managed.on_drain.append(lambda: setattr(servicer, "draining", True))
        self._trim = asyncio.get_running_loop().create_task(trim_forever(lambda: servicer.requests_seen))
        if s.controller:
            node = ServerNode(self)
            host = socket.gethostname() if s.host in ("0.0.0.0", "::") else s.host
            self.control = ControlLink(s.controller, s.node_id, control_pb2.ROLE_SERVER, profile=node.profile,
                                       apply=node.apply, serve_address=f"{host}:{self.managed.port}",
                                       rpc_timeout_s=s.control_timeout_s,
                                       keepalive=Keepalive(s.keepalive_s, s.keepalive_timeout_s))
            self.control.start()
            self._telemetry = asyncio.get_running_loop().create_task(node.report_forever(self.control))
        if s.metrics_port is not None:
            self.metrics.serve(s.metrics_port)
        if s.port_file:
            Path(s.port_file).write_text(str(self.managed.port))
        return self.managed.port

    async def run(self) -> None:
        port = await self.start()
        assert self.managed is not None
        self.managed.install_signal_handlers()
        print(f"edge-server listening on port {port} ({self.source.label}, split={self.settings.split}, "
              f"rho~={self.settings.rho}, method={self.settings.method})", flush=True)
        try:
            await self.managed.wait()
        finally:
            for task in (self._telemetry, self._trim):
                if task is not None:
                    task.cancel()
            if self.control is not None:
                await self.control.close()
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.decoder.shutdown(wait=False, cancel_futures=True)
            self.stage.close()
            logger.info("edge server stopped")


def calibrate_server(settings: EdgeSettings, freqs: list[float] | None, as_json: bool) -> int:
    """Fit phi~ on this server with its own back layers as the workload."""
    import numpy as np

    from edge_server.compute import run_server_part
    from splitbed.calibration import report, run_calibration
    from splitbed.model import profile_part

    source = resolve_model(settings.model)
    split = min(settings.split, source.n_layers - 1)
    part = load_server_part(source, split, rho=settings.rho, method=settings.method, device=settings.device)
    stage = Stage(settings.clock, settings.clock_profile, settings.energy, pue=settings.pue,
                  phi=settings.power_coeff, host_flops_per_s=settings.host_flops_per_s)
    seq = settings.profile_seq_len
    hidden = np.random.default_rng(0).standard_normal((1, seq, source.hidden_size)).astype(np.float32)
    mask = np.ones((1, seq), np.int64)
    flops = profile_part(part, seq).flops
    bare = Stage("none", "", "model", pue=settings.pue, phi=settings.power_coeff)

    def workload() -> float:
        for _ in range(10):
            run_server_part(part, hidden, mask, 0.0, bare, flops)
        return 10.0 * flops

    report(run_calibration(stage, workload, freqs=freqs), as_json)
    return 0
