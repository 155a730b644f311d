"""REST API of the controller (FastAPI; OpenAPI at /docs).

Domain errors map to HTTP codes in one handler; request bodies are pydantic
models, so bad input is a 422 naming the field.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, Field

from controller.live import PIN_FIELDS, LiveSystem
from controller.multi_rest import MultiSolveMiddleware
from controller.problem import Answer, Problem
from splitbed import errors


class BudgetIn(BaseModel):
    latency_s: float = Field(gt=0, description="latency budget T0, seconds")
    energy_j: float = Field(gt=0, description="energy budget E0, joules")


class PinsIn(BaseModel):
    """Knobs to hold fixed; the controller solves for the free ones. null = free."""

    split: int | None = Field(default=None, ge=0)
    rho_device: float | None = Field(default=None, gt=0, le=1)
    rho_server: float | None = Field(default=None, gt=0, le=1)
    power_w: float | None = Field(default=None, gt=0, description="transmit power, W")
    freq_device_hz: float | None = Field(default=None, gt=0, description="device clock cap, Hz")
    freq_server_hz: float | None = Field(default=None, gt=0, description="server clock cap, Hz")


def _msg(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def plan_view(live: LiveSystem) -> dict[str, Any]:
    plan = live.plan
    return {
        "version": plan.config.version if plan else 0,
        "status": plan.status if plan else "none",
        "config": _msg(plan.config) if plan else None,
        "answer": plan.answer.model_dump() if plan else None,
        "budget": {"latency_s": live.budget[0], "energy_j": live.budget[1]},
        "pins": live.pins,
        "last_error": live.last_error,
        "history": live.history[-20:],
    }


def nodes_view(live: LiveSystem) -> list[dict[str, Any]]:
    out = []
    for n in live.nodes.values():
        profile = _msg(n.profile)
        profile["n_splits"] = len(profile.pop("splits", []))
        out.append({
            "node_id": n.node_id, "role": n.role, "address": n.address, "profile": profile,
            "registered_at": n.registered_at, "last_seen": n.last_seen,
            "applied_version": n.acked_version, "applied": n.applied, "applied_sources": n.applied_sources,
            "ack_error": n.ack_error, "telemetry": n.telemetry, "telemetry_sources": n.telemetry_sources,
            "subscribed": n.queue is not None,
        })
    return out


def create_app(live: LiveSystem) -> FastAPI:
    app = FastAPI(title="splitbed controller", version="1",
                  description="Plans split point, pruning ratios, transmit power and clocks (problem P1) and "
                              "pushes them to the device agents and edge servers.")
    app.add_middleware(MultiSolveMiddleware, live=live)  # POST /v1/solve with "devices": the multi-device form

    @app.exception_handler(errors.SplitbedError)
    async def _domain_error(request: Request, exc: errors.SplitbedError) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status, content={"detail": str(exc), "error": type(exc).__name__})

    @app.post("/v1/solve", response_model=Answer, summary="Solve P1 for a problem (stateless)")
    async def solve(problem: Problem, solver: Literal["exact", "sca"] = Query("exact"),
                    scheme: str = Query("joint")) -> Response:
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(
            live.solver_pool, lambda: live.planner.solve(problem, solver=solver, scheme=scheme)
        )
        # Serialised once by pydantic-core; returning the model would re-validate it (~25 ms for 13 splits).
        return Response(content=answer.model_dump_json(), media_type="application/json")

    @app.get("/v1/nodes", summary="Registered agents and servers: profiles, telemetry, applied config")
    async def nodes() -> list[dict[str, Any]]:
        return nodes_view(live)

    @app.post("/v1/nodes/{node_id}/profile", summary="Ask a node to re-measure its profile now")
    async def reprofile(node_id: str) -> dict[str, Any]:
        await live.request_profile(node_id)
        return next(n for n in nodes_view(live) if n["node_id"] == node_id)

    @app.post("/v1/replan", summary="Re-plan now from the nodes' current profiles and push")
    async def replan() -> JSONResponse:
        answer, new_plan = await live.replan("requested")
        if new_plan is None:
            return JSONResponse(status_code=409, content={"detail": f"no plan: {answer.status}",
                                                          "answer": answer.model_dump()})
        return JSONResponse(content=plan_view(live))

    @app.get("/v1/plan", summary="The current plan and its version")
    async def plan() -> dict[str, Any]:
        return plan_view(live)

    @app.put("/v1/budget", summary="Change T0/E0 of the live system: re-plan and push")
    async def budget(body: BudgetIn) -> JSONResponse:
        answer, new_plan = await live.replan("budget change", latency_s=body.latency_s, energy_j=body.energy_j)
        if new_plan is None:
            return JSONResponse(status_code=409, content={
                "detail": f"budget T0={body.latency_s} s, E0={body.energy_j} J is {answer.status}; plan kept",
                "answer": answer.model_dump(), "plan": plan_view(live)})
        return JSONResponse(content=plan_view(live))

    @app.get("/v1/pins", summary="Knobs currently pinned by hand")
    async def get_pins() -> dict[str, float]:
        return live.pins

    @app.put("/v1/pins", summary="Pin knobs for an experiment; the free ones are re-optimised and pushed")
    async def put_pins(body: PinsIn) -> JSONResponse:
        pins = {k: v for k, v in body.model_dump().items() if v is not None and k in PIN_FIELDS}
        answer, new_plan = await live.replan("pins changed", pins=pins)
        if new_plan is None:
            return JSONResponse(status_code=409, content={
                "detail": f"no feasible plan with pins {pins}: {answer.status}; plan kept",
                "answer": answer.model_dump()})
        return JSONResponse(content=plan_view(live))

    @app.delete("/v1/pins", summary="Unpin every knob: back to the optimum")
    async def delete_pins() -> dict[str, Any]:
        await live.replan("pins cleared", pins={})
        return plan_view(live)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics of the controller")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(live.metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    return app
