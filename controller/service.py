"""`controller serve`: the REST API and the gRPC control service in one event loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from grpc import aio

from controller.cli import register_subcommand
from controller.grpc_service import ControlServicer
from controller.live import LiveSystem
from controller.rest import create_app
from controller.settings import ControllerSettings
from splitbed.cli_settings import add_settings_arguments, settings_from_args
from splitbed.grpc_server import start_server
from splitbed.v1 import control_pb2, control_pb2_grpc

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM stops gRPC and REST together, here."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    # Binding here (not in uvicorn) lets port 0 work and tells us the port before serving.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(settings: ControllerSettings) -> None:
    live = LiveSystem(settings)
    servicer = ControlServicer(live)

    def register(server: aio.Server) -> str:
        control_pb2_grpc.add_ControlServiceServicer_to_server(servicer, server)
        return str(control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name)

    sock = _bind(settings.host, settings.rest_port)  # before gRPC starts, so a busy port fails cleanly
    rest_port = sock.getsockname()[1]
    grpc_server = await start_server([register], host=settings.host, port=settings.grpc_port,
                                     grace_s=settings.grace_s)
    config = uvicorn.Config(create_app(live), log_level="warning", lifespan="off")
    rest = _Server(config)

    async def stop() -> None:
        rest.should_exit = True
        await grpc_server.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: loop.create_task(stop()))
    rest_task = loop.create_task(rest.serve(sockets=[sock]))
    if settings.port_file:
        Path(settings.port_file).write_text(f"{grpc_server.port} {rest_port}")
    print(f"controller: gRPC on port {grpc_server.port}, REST on port {rest_port} (docs at /docs)", flush=True)
    await grpc_server.wait()
    await rest_task
    live.solver_pool.shutdown(wait=False, cancel_futures=True)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(settings_from_args(ControllerSettings, args)))
    except OSError as exc:
        print(f"controller: cannot listen: {exc}", file=sys.stderr)
        return 2
    return 0


def add_serve_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run the controller service (REST + gRPC)")
    add_settings_arguments(p, ControllerSettings)
    p.add_argument("--log-level", default="INFO", help="logging level")
    p.set_defaults(handler=_serve)


register_subcommand("serve", add_serve_parser)
