"""A `grpc.aio` server with the testbed's standard parts.

Every service gets: the error-mapping interceptor, the standard health service,
reflection, explicit message size limits, and a graceful shutdown that first
marks every service NOT_SERVING (so load balancers and health checks stop
sending work) and then stops with a grace period for in-flight streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from splitbed.grpc_errors import ErrorMappingInterceptor

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def channel_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # Without this a second server on a busy port starts "successfully" and shares it.
        ("grpc.so_reuseport", 0),
    ]


@dataclass
class ManagedServer:
    server: aio.Server
    health: health.aio.HealthServicer
    services: list[str]
    port: int
    grace_s: float
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    on_drain: list[Callable[[], None]] = field(default_factory=list)  # run first on stop (refuse new work)

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in [*self.services, ""]:
            await self.health.set(name, status)

    async def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        logger.info("going NOT_SERVING, then stopping with %.1f s grace", self.grace_s)
        for drain in self.on_drain:
            drain()
        await self.set_serving(False)
        await self.server.stop(self.grace_s)

    def request_stop(self) -> None:
        asyncio.get_running_loop().create_task(self.stop())

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def start_server(
    register: Iterable[Callable[[aio.Server], str]],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    grace_s: float = 5.0,
    credentials: grpc.ServerCredentials | None = None,
    options: Sequence[tuple[str, int]] = (),
) -> ManagedServer:
    """Start a server; each `register` callback adds a servicer and returns its full service name."""
    server = aio.server(interceptors=[ErrorMappingInterceptor()],
                        options=[*channel_options(max_message_bytes), *options])
    names = [reg(server) for reg in register]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                                         reflection.SERVICE_NAME], server)
    try:
        address = f"{host}:{port}"
        bound = (server.add_insecure_port(address) if credentials is None  # TLS: splitbed.tls.server_credentials
                 else server.add_secure_port(address, credentials))
    except RuntimeError as exc:  # grpcio reports a failed bind this way
        raise OSError(f"cannot listen on {host}:{port}: {exc} (port in use?)") from None
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} (port in use?)")
    await server.start()
    managed = ManagedServer(server, health_servicer, names, bound, grace_s)
    await managed.set_serving(True)
    logger.info("serving %s on %s:%d", ", ".join(names), host, bound)
    return managed
