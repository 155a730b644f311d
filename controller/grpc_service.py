"""ControlService: thin gRPC layer over the live system and the solver, with its access rules.

Every node call names the node it acts as; the caller must hold that node's
token (or admin's) when a token file is configured, and under mutual TLS its
certificate must name that node. Solve needs the admin role.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from grpc import aio
from pydantic import ValidationError

from controller.auth import Authority
from controller.live import LiveSystem, validation_message
from controller.multi_parse import parse_multi
from controller.problem import Problem
from controller.solve_pool import SolvePool
from splitbed.errors import InvalidArgument, NotFound
from splitbed.tls import peer_names
from splitbed.v1 import control_pb2, control_pb2_grpc

logger = logging.getLogger(__name__)

__all__ = ["ControlServicer", "validation_message"]


def _authorization(context: aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


class ControlServicer(control_pb2_grpc.ControlServiceServicer):
    def __init__(self, live: LiveSystem, authority: Authority | None = None, solve_pool: SolvePool | None = None,
                 mutual_tls: bool = False) -> None:
        self.live = live
        self.authority = authority or Authority(None)
        self.solve_pool = solve_pool
        self.mutual_tls = mutual_tls

    def _as_node(self, context: aio.ServicerContext, node_id: str) -> None:
        self.authority.node(_authorization(context), node_id, peer_names(context), self.mutual_tls)

    async def Register(  # noqa: N802 - gRPC method name
        self, request: control_pb2.RegisterRequest, context: aio.ServicerContext
    ) -> control_pb2.RegisterResponse:
        if not request.node_id:
            raise InvalidArgument("node_id is empty")
        self._as_node(context, request.node_id)
        changed = await self.live.register(request.node_id, request.role, request.profile, request.address,
                                           request.applied_version)
        if self.live.ready() and (self.live.plan is None or changed or self.live.group_changed()):
            reason = ("nodes registered" if self.live.plan is None else
                      f"profile of {request.node_id} changed" if changed else f"{request.node_id} joined")
            asyncio.get_running_loop().create_task(self.live.replan_quietly(reason))
        return control_pb2.RegisterResponse(node_id=request.node_id, current_version=self.live.version)

    async def WatchConfig(  # noqa: N802
        self, request: control_pb2.WatchConfigRequest, context: aio.ServicerContext
    ) -> AsyncIterator[control_pb2.Config]:
        self._as_node(context, request.node_id)
        queue = self.live.subscribe(request.node_id, request.known_version)
        try:
            while True:
                config = await queue.get()
                if self.live.nodes.get(request.node_id) is None:
                    raise NotFound(f"node {request.node_id!r} was deleted; register again")
                yield config
        finally:
            self.live.unsubscribe(request.node_id, queue)

    async def Ack(  # noqa: N802
        self, request: control_pb2.AckRequest, context: aio.ServicerContext
    ) -> control_pb2.AckResponse:
        self._as_node(context, request.node_id)
        self.live.ack(request)
        return control_pb2.AckResponse()

    async def ReportTelemetry(  # noqa: N802
        self, request: control_pb2.TelemetryReport, context: aio.ServicerContext
    ) -> control_pb2.TelemetryAck:
        self._as_node(context, request.node_id)
        await self.live.telemetry(request)
        return control_pb2.TelemetryAck()

    async def Solve(  # noqa: N802
        self, request: control_pb2.SolveRequest, context: aio.ServicerContext
    ) -> control_pb2.SolveResponse:
        self.authority.admin(_authorization(context))
        multi = parse_multi(request.problem_json, request.solver, request.scheme)
        try:
            problem = None if multi is not None else Problem.model_validate_json(request.problem_json)
        except ValidationError as exc:
            raise InvalidArgument(validation_message(exc)) from None
        if self.solve_pool is None:
            raise InvalidArgument("stateless solves are not served here")
        if multi is not None:
            return control_pb2.SolveResponse(answer_json=await self.solve_pool.solve_multi(multi))
        assert problem is not None
        answer = await self.solve_pool.solve(problem, request.solver or "exact", request.scheme or "joint")
        return control_pb2.SolveResponse(answer_json=answer)
