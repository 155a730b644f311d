"""A node's side of the control plane: register, watch configs, apply, acknowledge, report.

Used by the device agent and the edge server alike (torch-free). The loop
survives the controller going away: the node keeps its last config, retries
with backoff, and re-registers when the controller is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
from grpc import aio

from splitbed.errors import SplitbedError
from splitbed.resilience import Keepalive
from splitbed.v1 import control_pb2, control_pb2_grpc

logger = logging.getLogger(__name__)


@dataclass
class Applied:
    """What a node actually applied for a config (snapped clock, achieved ratio, ...)."""

    knobs: control_pb2.Knobs
    sources: dict[str, str] = field(default_factory=dict)


ApplyFn = Callable[[control_pb2.Config], Awaitable[Applied]]
ProfileFn = Callable[[], Awaitable[control_pb2.NodeProfile]]


class ControlLink:
    """Runs `apply` for every new config the controller pushes, then acknowledges it."""

    def __init__(self, address: str, node_id: str, role: int, *, profile: ProfileFn, apply: ApplyFn,
                 serve_address: str = "", backoff_s: tuple[float, float] = (0.2, 5.0),
                 keepalive: Keepalive | None = None, rpc_timeout_s: float = 10.0) -> None:
        self.address = address
        self.node_id = node_id
        self.role = role
        self._profile = profile
        self._apply = apply
        self._serve_address = serve_address
        self._backoff = backoff_s
        # WatchConfig lives as long as the node: keepalive, not a deadline, finds a dead controller.
        self._channel = aio.insecure_channel(address, options=(keepalive or Keepalive()).client_options())
        self._timeout_s = rpc_timeout_s
        self.stub = control_pb2_grpc.ControlServiceStub(self._channel)
        self.version = 0
        self.config: control_pb2.Config | None = None
        self.first_config = asyncio.Event()
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"control-{self.node_id}")

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, aio.AioRpcError) else None
                logger.warning("controller %s: %s; keeping config version %d, retrying in %.1f s",
                               self.address, code, self.version, delay)
            except Exception:
                logger.exception("control session failed; retrying in %.1f s", delay)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _session(self) -> None:
        profile = await self._profile()
        await self.stub.Register(control_pb2.RegisterRequest(
            node_id=self.node_id, role=cast(Any, self.role), profile=profile, address=self._serve_address,
            applied_version=self.version), timeout=self._timeout_s)
        self.connected.set()
        stream = self.stub.WatchConfig(control_pb2.WatchConfigRequest(node_id=self.node_id,
                                                                      known_version=self.version))
        async for config in stream:
            if config.reprofile:
                profile = await self._profile()
                await self.report({}, {}, profile=profile)
                continue
            if config.version <= self.version:
                continue
            await self._handle(config)

    async def _handle(self, config: control_pb2.Config) -> None:
        try:
            applied = await self._apply(config)
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
        self.config = config
        self.first_config.set()
        await self.stub.Ack(control_pb2.AckRequest(node_id=self.node_id, version=config.version, ok=True,
                                                   applied=applied.knobs, sources=applied.sources),
                            timeout=self._timeout_s)
        logger.info("applied config version %d (%s)", config.version, config.reason)

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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._channel.close()
