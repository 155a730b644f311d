"""Build and run the edge server: load the part, start gRPC, serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from grpc import aio

from edge_server.registry import PartRegistry, Served
from edge_server.servicer import InferenceServicer
from edge_server.settings import EdgeSettings
from splitbed.codec import Limits
from splitbed.grpc_server import ManagedServer, start_server
from splitbed.model import load_server_part, resolve_model
from splitbed.v1 import inference_pb2, inference_pb2_grpc

logger = logging.getLogger(__name__)


class EdgeServer:
    """The edge process: a part registry, a worker pool and the gRPC services."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.source = resolve_model(settings.model)
        self.registry = PartRegistry()
        self.executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="edge-compute")
        self.managed: ManagedServer | None = None
        self.servicer: InferenceServicer | None = None

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
        )
        servicer = self.servicer

        def register(server: aio.Server) -> str:
            inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, server)
            return str(inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name)

        self.managed = await start_server(
            [register], host=s.host, port=s.port, max_message_bytes=s.max_message_bytes, grace_s=s.grace_s
        )
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
            self.executor.shutdown(wait=False, cancel_futures=True)
            logger.info("edge server stopped")
