"""ControlService: thin gRPC layer over the live system and the solver."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from grpc import aio
from pydantic import ValidationError

from controller.live import LiveSystem
from controller.problem import Problem
from splitbed.errors import InvalidArgument
from splitbed.v1 import control_pb2, control_pb2_grpc

logger = logging.getLogger(__name__)


def validation_message(exc: ValidationError) -> str:
    """One line per bad field, each naming the field (the same text REST returns as 422 detail)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class ControlServicer(control_pb2_grpc.ControlServiceServicer):
    def __init__(self, live: LiveSystem) -> None:
        self.live = live

    async def Register(  # noqa: N802 - gRPC method name
        self, request: control_pb2.RegisterRequest, context: aio.ServicerContext
    ) -> control_pb2.RegisterResponse:
        if not request.node_id:
            raise InvalidArgument("node_id is empty")
        await self.live.register(request.node_id, request.role, request.profile, request.address,
                                 request.applied_version)
        if self.live.ready() and self.live.plan is None:
            asyncio.get_running_loop().create_task(self.live.replan_quietly("nodes registered"))
        return control_pb2.RegisterResponse(node_id=request.node_id, current_version=self.live.version)

    async def WatchConfig(  # noqa: N802
        self, request: control_pb2.WatchConfigRequest, context: aio.ServicerContext
    ) -> AsyncIterator[control_pb2.Config]:
        queue = self.live.subscribe(request.node_id, request.known_version)
        try:
            while True:
                yield await queue.get()
        finally:
            self.live.unsubscribe(request.node_id, queue)

    async def Ack(  # noqa: N802
        self, request: control_pb2.AckRequest, context: aio.ServicerContext
    ) -> control_pb2.AckResponse:
        self.live.ack(request)
        return control_pb2.AckResponse()

    async def ReportTelemetry(  # noqa: N802
        self, request: control_pb2.TelemetryReport, context: aio.ServicerContext
    ) -> control_pb2.TelemetryAck:
        await self.live.telemetry(request)
        return control_pb2.TelemetryAck()

    async def Solve(  # noqa: N802
        self, request: control_pb2.SolveRequest, context: aio.ServicerContext
    ) -> control_pb2.SolveResponse:
        try:
            problem = Problem.model_validate_json(request.problem_json)
        except ValidationError as exc:
            raise InvalidArgument(validation_message(exc)) from None
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(
            self.live.solver_pool,
            lambda: self.live.planner.solve(problem, solver=request.solver or "exact",
                                            scheme=request.scheme or "joint"),
        )
        return control_pb2.SolveResponse(answer_json=answer.model_dump_json())
