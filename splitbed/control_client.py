"""A node's client of the controller: register, watch configs, apply, acknowledge, report telemetry.

Used by the device agent and the edge server alike (torch-free). The loop
survives the controller going away: the node keeps its last config, retries
with backoff, and re-registers when the controller is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

import grpc
from grpc import aio

from splitbed.errors import SplitbedError
from splitbed.node_contract import ControlledNode
from splitbed.resilience import Keepalive
from splitbed.tls import TlsFiles, aio_channel
from splitbed.v1 import control_pb2, control_pb2_grpc

logger = logging.getLogger(__name__)


class ControlClient:
    """Applies every new config the controller pushes to `node`, then acknowledges it.

    With `telemetry_every_s` it also reports the node's telemetry on that
    period; otherwise the node's owner calls `report_telemetry` when it has
    news (the agent does, every N requests).
    """

    def __init__(self, address: str, node_id: str, role: int, node: ControlledNode, *, serve_address: str = "",
                 telemetry_every_s: float | None = None, backoff_s: tuple[float, float] = (0.2, 5.0),
                 tls: TlsFiles | None = None, token: str | None = None,
                 keepalive: Keepalive | None = None, rpc_timeout_s: float = 10.0) -> None:
        self.address = address
        self.node_id = node_id
        self.role = role
        self.node = node
        self._serve_address = serve_address
        self._telemetry_every_s = telemetry_every_s
        self._backoff = backoff_s
        # WatchConfig lives as long as the node: keepalive, not a deadline, finds a dead controller.
        self._channel = aio_channel(address, tls or TlsFiles(), token=token,  # TLS/token: splitbed.tls
                                    options=(keepalive or Keepalive()).client_options())
        self._timeout_s = rpc_timeout_s
        self.stub = control_pb2_grpc.ControlServiceStub(self._channel)
        self.version = 0
        self.first_config = asyncio.Event()
        # The controller refused this node's credentials (UNAUTHENTICATED / PERMISSION_DENIED): retrying does
        # not fix a wrong token, so a caller waiting for its first plan can stop at once (`refusal` says why).
        self.refused = asyncio.Event()
        self.refusal = ""
        self._profile: control_pb2.NodeProfile | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._run(), name=f"control-{self.node_id}"))
        if self._telemetry_every_s is not None:
            self._tasks.append(loop.create_task(self._report_forever(self._telemetry_every_s),
                                                name=f"telemetry-{self.node_id}"))

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, aio.AioRpcError) else None
                if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    details = exc.details() if isinstance(exc, aio.AioRpcError) else ""
                    self.refusal = f"{code.name}: {details}"
                    self.refused.set()
                logger.warning("controller %s: %s; keeping config version %d, retrying in %.1f s",
                               self.address, code, self.version, delay)
            except Exception:
                logger.exception("control session failed; retrying in %.1f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _session(self) -> None:
        # A reconnect re-attaches with the profile measured before: the controller kept it (its state file),
        # so an unchanged node is not re-planned, and it asks for a new measurement when it wants one.
        if self._profile is None:
            self._profile = await self.node.profile()
        await self.stub.Register(control_pb2.RegisterRequest(
            node_id=self.node_id, role=cast(Any, self.role), profile=self._profile, address=self._serve_address,
            applied_version=self.version), timeout=self._timeout_s)
        stream = self.stub.WatchConfig(control_pb2.WatchConfigRequest(node_id=self.node_id,
                                                                      known_version=self.version))
        async for config in stream:
            if config.reprofile:
                self._profile = await self.node.profile()
                await self.report({}, {}, profile=self._profile)
                continue
            if config.version <= self.version:
                continue
            await self._handle(config)

    async def _handle(self, config: control_pb2.Config) -> None:
        try:
            applied = await self.node.apply(config)
        except Exception as exc:  # any failure is reported: the controller must not wait for an ack that never comes
            if isinstance(exc, SplitbedError):
                logger.error("could not apply config version %d: %s", config.version, exc)
            else:
                logger.exception("applying config version %d failed unexpectedly", config.version)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            await self.stub.Ack(control_pb2.AckRequest(node_id=self.node_id, version=config.version, ok=False,
                                                       error=error), timeout=self._timeout_s)
            return
        self.version = config.version
        self.first_config.set()
        await self.stub.Ack(control_pb2.AckRequest(node_id=self.node_id, version=config.version, ok=True,
                                                   applied=applied.knobs, sources=applied.sources),
                            timeout=self._timeout_s)
        logger.info("applied config version %d (%s)", config.version, config.reason)

    async def report_telemetry(self) -> None:
        """Send the node's telemetry if it has any due."""
        telemetry = self.node.telemetry()
        if telemetry is not None:
            await self.report(telemetry.values, telemetry.sources)

    async def _report_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.report_telemetry()

    async def report(self, values: dict[str, float], sources: dict[str, str],
                     profile: control_pb2.NodeProfile | None = None) -> None:
        """Send telemetry; losing it while the controller is away is fine."""
        report = control_pb2.TelemetryReport(node_id=self.node_id, config_version=self.version, values=values,
                                             sources=sources)
        if profile is not None:
            report.profile.CopyFrom(profile)
        try:
            await self.stub.ReportTelemetry(report, timeout=self._timeout_s)
        except grpc.RpcError as exc:
            logger.debug("telemetry not delivered: %s", exc)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._channel.close()
