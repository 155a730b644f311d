"""`controller serve`: the REST API and the gRPC control service in one event loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from grpc import aio
from pydantic import ValidationError

from controller.auth import Authority, load_tokens
from controller.cli import register_subcommand
from controller.grpc_service import ControlServicer
from controller.live import LiveSystem, validation_message
from controller.rest import create_app
from controller.settings import ControllerSettings
from controller.solve_pool import SolvePool
from splitbed.cli_settings import add_settings_arguments, settings_from_args
from splitbed.errors import SplitbedError
from splitbed.grpc_server import start_server
from splitbed.tls import TlsFiles, server_credentials, uvicorn_ssl_kwargs
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
    tls = TlsFiles.of(settings)
    authority = Authority(load_tokens(settings.token_file) if settings.token_file else None,
                          reads_need_token=settings.auth_reads)
    live = LiveSystem(settings)
    live.start()  # nodes going stale leave their groups
    pool = SolvePool(settings)
    servicer = ControlServicer(live, authority, pool, mutual_tls=tls.mutual)

    def register(server: aio.Server) -> str:
        control_pb2_grpc.add_ControlServiceServicer_to_server(servicer, server)
        return str(control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name)

    sock = _bind(settings.host, settings.rest_port)  # before gRPC starts, so a busy port fails cleanly
    rest_port = sock.getsockname()[1]
    grpc_server = await start_server([register], host=settings.host, port=settings.grpc_port,
                                     grace_s=settings.grace_s, credentials=server_credentials(tls))
    config = uvicorn.Config(create_app(live, authority, pool), log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=max(1, math.ceil(settings.grace_s)), **uvicorn_ssl_kwargs(tls))
    rest = _Server(config)

    async def stop() -> None:
        pool.close()  # stateless solves in flight are abandoned, not waited for
        rest.should_exit = True
        await grpc_server.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: loop.create_task(stop()))
    rest_task = loop.create_task(rest.serve(sockets=[sock]))
    if settings.port_file:
        Path(settings.port_file).write_text(f"{grpc_server.port} {rest_port}")
    print(f"controller: gRPC on port {grpc_server.port}, REST on port {rest_port} (docs at /docs)"
          f"{', TLS' if tls.serves_tls else ''}{' (mutual)' if tls.mutual else ''}"
          f"{', tokens on' if authority.enabled else ''}; state in {settings.state}", flush=True)
    logger.info("listening on %s (gRPC %d, REST %d)", settings.host, grpc_server.port, rest_port)
    await grpc_server.wait()
    await rest_task
    pool.close()
    live.close()


def _serve(args: argparse.Namespace) -> int:
    # force: `controller` already configured logging (WARNING) before dispatching here.
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        force=True)
    try:
        asyncio.run(serve(settings_from_args(ControllerSettings, args)))
    except OSError as exc:
        print(f"controller: cannot listen: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"controller: error: {validation_message(exc)}", file=sys.stderr)
        return 2
    except SplitbedError as exc:
        print(f"controller: error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_serve_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run the controller service (REST + gRPC)")
    add_settings_arguments(p, ControllerSettings)
    p.add_argument("--log-level", default="INFO", type=str.upper,
                   choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], help="logging level")
    p.set_defaults(handler=_serve)


register_subcommand("serve", add_serve_parser)
