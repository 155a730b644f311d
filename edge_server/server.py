"""Build and run the edge server: load the part, start gRPC, follow the controller, serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grpc import aio

from edge_server.admission import Bounds
from edge_server.compute import PartLoader
from edge_server.memtrim import trim_forever
from edge_server.node import ServerNode
from edge_server.registry import PartRegistry
from edge_server.servicer import InferenceServicer
from edge_server.settings import EdgeSettings
from splitbed.codec import Limits
from splitbed.control_client import ControlClient
from splitbed.grpc_server import ManagedServer, start_server
from splitbed.metrics import Metrics
from splitbed.model import resolve_model
from splitbed.resilience import Keepalive
from splitbed.side.calibrate_command import calibrate_command
from splitbed.side.hardware import ComputeHardware
from splitbed.side.timed import open_model
from splitbed.tls import TlsFiles, read_token, server_credentials
from splitbed.v1 import control_pb2, inference_pb2, inference_pb2_grpc

logger = logging.getLogger(__name__)

# Without BDP probing, HTTP/2 windows stay at their 64 KiB look-ahead: a stream this server is not reading
# (refused, or waiting for its turn) buffers 64 KiB here, not a whole large message.
TRANSPORT_OPTIONS = [("grpc.http2.bdp_probe", 0)]
STREAM_HEADROOM = 8  # HTTP/2 streams per connection beyond max_streams_per_peer
TELEMETRY_EVERY_S = 5.0  # requests served and memory, reported to the controller; lost while it is away


class EdgeServer:
    """The edge process: a part registry, a worker pool, the compute hardware and the gRPC services."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.source = open_model(settings, "server")
        self.loader = PartLoader(settings, self.source)
        self.registry = PartRegistry()
        self.executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="edge-compute")
        self.decoder = ThreadPoolExecutor(max_workers=settings.decode_workers, thread_name_prefix="edge-decode")
        self.hw = ComputeHardware.from_settings(settings)
        self.managed: ManagedServer | None = None
        self.servicer: InferenceServicer | None = None
        self.control: ControlClient | None = None
        self.metrics = Metrics("server")
        self._trim: asyncio.Task[None] | None = None

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
        served = await loop.run_in_executor(self.executor, self.loader.served, 0, s.split, s.rho, s.method)
        self.registry.install(served)
        self.servicer = InferenceServicer(
            self.registry,
            self.executor,
            limits=Limits(max_bytes=s.max_message_bytes),
            max_batch=s.max_batch,
            info=self.info(),
            hw=self.hw,
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
            credentials=server_credentials(TlsFiles.of(s)),
            options=[*Keepalive(s.keepalive_s, s.keepalive_timeout_s).server_options(), *TRANSPORT_OPTIONS,
                     # Streams are admitted once their first request is read (servicer.py): until then HTTP/2
                     # bounds them per connection, with room for refusals in flight and unary calls.
                     ("grpc.max_concurrent_streams", s.max_streams_per_peer + STREAM_HEADROOM)],
        )
        self.managed.on_drain.append(lambda: setattr(servicer, "draining", True))
        self._trim = asyncio.get_running_loop().create_task(trim_forever(lambda: servicer.requests_seen))
        if s.controller:
            self.control = self._control_client(servicer, self.managed.port)
            self.control.start()
        if s.metrics_port is not None:
            self.metrics.serve(s.metrics_port, host=s.host)
        if s.port_file:
            Path(s.port_file).write_text(str(self.managed.port))
        return self.managed.port

    def _control_client(self, servicer: InferenceServicer, port: int) -> ControlClient:
        s = self.settings
        node = ServerNode(settings=s, registry=self.registry, loader=self.loader, hw=self.hw, metrics=self.metrics,
                          requests_served=lambda: servicer.requests_served)
        host = socket.gethostname() if s.host in ("0.0.0.0", "::") else s.host
        return ControlClient(s.controller or "", s.node_id, control_pb2.ROLE_SERVER, node,
                             serve_address=f"{host}:{port}", telemetry_every_s=TELEMETRY_EVERY_S,
                             tls=TlsFiles.of(s), token=read_token(s.token, s.token_file),
                             rpc_timeout_s=s.control_timeout_s,
                             keepalive=Keepalive(s.keepalive_s, s.keepalive_timeout_s))

    async def run(self) -> None:
        port = await self.start()
        assert self.managed is not None
        self.managed.install_signal_handlers()
        print(f"edge-server listening on port {port} ({self.source.label}, split={self.settings.split}, "
              f"rho~={self.settings.rho}, method={self.settings.method})", flush=True)
        try:
            await self.managed.wait()
        finally:
            if self._trim is not None:
                self._trim.cancel()
            if self.control is not None:
                await self.control.close()
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.decoder.shutdown(wait=False, cancel_futures=True)
            self.hw.close()
            logger.info("edge server stopped")


def run_command(settings: EdgeSettings) -> int:
    """`edge-server serve`: serve until SIGTERM."""
    asyncio.run(EdgeServer(settings).run())
    return 0


def calibrate(settings: EdgeSettings, freqs: list[float] | None, as_json: bool) -> int:
    """Fit phi~ on this server with its own back layers as the workload."""
    source = resolve_model(settings.model)
    part = PartLoader(settings, source).part(min(settings.split, source.n_layers - 1), settings.rho, settings.method)
    return calibrate_command(settings, part, settings.profile_seq_len, freqs, as_json)
