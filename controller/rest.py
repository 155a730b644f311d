"""REST API of the controller (FastAPI; OpenAPI at /docs).

Domain errors map to HTTP codes in one handler (controller.http_guard);
request bodies are strict pydantic models, so bad input is a 422 naming the
field and changes nothing. Writes need the admin role when tokens are on.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, ConfigDict, Field

from controller.auth import Authority
from controller.group_views import group_view, node_group
from controller.http_guard import AdminOnly, BodyLimit, access, install_error_handlers, node_id_param
from controller.live import PIN_FIELDS, LiveSystem
from controller.multi_openapi import document_multi_solve
from controller.multi_problem import MultiAnswer
from controller.multi_rest import MultiSolveMiddleware
from controller.problem import Answer, Problem
from controller.solve_pool import SolvePool


class _In(BaseModel):
    # strict: true is not 1 s, "inf" is not a number; unknown keys are refused, not ignored.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class BudgetIn(_In):
    latency_s: float = Field(gt=0, le=1e6, description="latency budget T0, seconds")
    energy_j: float = Field(gt=0, le=1e9, description="energy budget E0, joules")
    device_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
                                  description="the device whose budget this is; omitted: every device")


class PinsIn(_In):
    """Knobs to hold fixed; the controller solves for the free ones. null = free. Checked against the live system."""

    split: int | None = Field(default=None, ge=0, le=100_000)
    rho_device: float | None = Field(default=None, gt=0, le=1)
    rho_server: float | None = Field(default=None, gt=0, le=1)
    power_w: float | None = Field(default=None, gt=0, le=1e4, description="transmit power, W")
    freq_device_hz: float | None = Field(default=None, gt=0, le=1e12, description="device clock cap, Hz")
    freq_server_hz: float | None = Field(default=None, gt=0, le=1e12, description="server clock cap, Hz")


def _msg(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def pins_view(pins: dict[str, float]) -> dict[str, float | int]:
    """Pins as PUT /v1/pins takes them: the split is a layer index, so an int (GET's answer can be PUT back)."""
    return {k: int(v) if k == "split" else v for k, v in pins.items()}


def plan_view(live: LiveSystem) -> dict[str, Any]:
    plan = live.plan
    return {
        "version": plan.config.version if plan else 0,
        "issued_version": live.version,
        "status": plan.status if plan else "none",
        "config": _msg(plan.config) if plan else None,
        "answer": plan.answer.model_dump() if plan else None,
        "budget": {"latency_s": live.budget[0], "energy_j": live.budget[1]},
        "pins": pins_view(live.pins),
        "device_budgets": {d: {"latency_s": b[0], "energy_j": b[1]} for d, b in sorted(live.device_budgets.items())},
        "groups": groups_view(live),
        "unassigned": live.unassigned(),
        "last_error": live.last_error,
        # Changed groups whose push failed: seconds until the controller tries again on its own.
        "push_retry_in_s": {s: round(max(0.0, at - time.monotonic()), 3)
                            for s, at in sorted(live.push_retry.pending().items())},
        "history": live.history[-20:],
    }


def groups_view(live: LiveSystem) -> list[dict[str, Any]]:
    """Per-server groups and their per-device plans, in server id order."""
    return [group_view(g, _msg) for _, g in sorted(live.groups.items())]


def nodes_view(live: LiveSystem) -> list[dict[str, Any]]:
    out = []
    now = time.time()
    for n in list(live.nodes.values()):
        profile = _msg(n.profile)
        profile["n_splits"] = len(profile.pop("splits", []))
        out.append({
            "node_id": n.node_id, "role": n.role, "address": n.address, "profile": profile,
            "registered_at": n.registered_at, "last_seen": n.last_seen,
            "stale": n.stale(live.settings.node_ttl_s, now),
            "applied_version": n.acked_version, "applied": n.applied, "applied_sources": n.applied_sources,
            "ack_error": n.ack_error, "telemetry": n.telemetry, "telemetry_sources": n.telemetry_sources,
            "subscribed": n.queue is not None, **node_group(live, n),
        })
    return out


def _refused(detail: str, answer: Answer | MultiAnswer, live: LiveSystem | None = None) -> JSONResponse:
    content: dict[str, Any] = {"detail": detail, "answer": answer.model_dump()}
    if live is not None:
        content["plan"] = plan_view(live)
    return JSONResponse(status_code=409, content=content)


def add_node_routes(app: FastAPI, live: LiveSystem, admin: Any, reader: Any) -> None:
    """Routes that show or change the registered nodes (writes: admin role)."""

    @app.get("/v1/nodes", summary="Registered agents and servers: profiles, telemetry, applied config",
             dependencies=[Depends(reader)])
    async def nodes() -> list[dict[str, Any]]:
        return nodes_view(live)

    @app.delete("/v1/nodes/{node_id}", summary="Remove a node (it must register again)",
                dependencies=[Depends(admin)])
    async def delete_node(node_id: str = Depends(node_id_param)) -> dict[str, Any]:
        live.delete_node(node_id)
        return {"deleted": node_id}

    @app.post("/v1/nodes/{node_id}/profile", summary="Ask a node to re-measure its profile now",
              dependencies=[Depends(admin)])
    async def reprofile(node_id: str = Depends(node_id_param)) -> dict[str, Any]:
        await live.request_profile(node_id)
        return next(n for n in nodes_view(live) if n["node_id"] == node_id)



def add_plan_routes(app: FastAPI, live: LiveSystem, admin: Any, reader: Any) -> None:
    """Routes that show or change the plan, the budget and the pins (writes: admin role)."""

    @app.post("/v1/replan", summary="Re-plan now from the nodes' current profiles and push",
              dependencies=[Depends(admin)])
    async def replan() -> JSONResponse:
        answer, new_plan = await live.replan("requested")
        if new_plan is None:
            return _refused(f"no plan: {answer.status}", answer)
        return JSONResponse(content=plan_view(live))

    @app.get("/v1/plan", summary="The current plan and its version", dependencies=[Depends(reader)])
    async def plan() -> dict[str, Any]:
        return plan_view(live)

    @app.put("/v1/budget", summary="Change T0/E0 of the live system: re-plan and push", dependencies=[Depends(admin)])
    async def budget(body: BudgetIn) -> JSONResponse:
        answer, new_plan = await live.replan("budget change", latency_s=body.latency_s, energy_j=body.energy_j,
                                             device_id=body.device_id)
        if new_plan is None:
            who = f" of {body.device_id}" if body.device_id else ""
            return _refused(f"budget{who} T0={body.latency_s} s, E0={body.energy_j} J is {answer.status}; plan kept",
                            answer, live)
        return JSONResponse(content=plan_view(live))

    @app.get("/v1/pins", summary="Knobs currently pinned by hand", dependencies=[Depends(reader)])
    async def get_pins() -> dict[str, float | int]:
        return pins_view(live.pins)

    @app.put("/v1/pins", summary="Pin knobs for an experiment; the free ones are re-optimised and pushed",
             dependencies=[Depends(admin)])
    async def put_pins(body: PinsIn) -> JSONResponse:
        pins = {k: v for k, v in body.model_dump().items() if v is not None and k in PIN_FIELDS}
        answer, new_plan = await live.replan("pins changed", pins=pins)
        if new_plan is None:
            return _refused(f"no feasible plan with pins {pins}: {answer.status}; plan kept", answer)
        return JSONResponse(content=plan_view(live))

    @app.delete("/v1/pins", summary="Unpin every knob: back to the optimum", dependencies=[Depends(admin)])
    async def delete_pins() -> dict[str, Any]:
        await live.replan("pins cleared", pins={})
        return plan_view(live)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics of the controller",
             dependencies=[Depends(reader)])
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(live.metrics.exposition(), media_type="text/plain; version=0.0.4")


def create_app(live: LiveSystem, authority: Authority | None = None, solve_pool: SolvePool | None = None,
               max_body_bytes: int | None = None) -> FastAPI:
    app = FastAPI(title="splitbed controller", version="1",
                  description="Plans split point, pruning ratios, transmit power and clocks (problem P1) and "
                              "pushes them to the device agents and edge servers.")
    install_error_handlers(app)
    authority = authority or Authority(None)
    # Outermost last: body limit, then the admin check on every solve, then the multi-device form.
    pool = solve_pool or SolvePool(live.settings)
    # POST /v1/solve with "devices": the multi-device form, solved in the same stateless pool
    app.add_middleware(MultiSolveMiddleware, live=live, pool=pool)
    app.add_middleware(AdminOnly, authority=authority, paths=("/v1/solve",))
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes or live.settings.max_body_bytes)
    admin, reader = access(authority)

    @app.post("/v1/solve", response_model=Answer, summary="Solve P1 for a problem (stateless)",
              dependencies=[Depends(admin)])
    async def solve(problem: Problem, solver: Literal["exact", "sca"] = Query("exact"),
                    scheme: str = Query("joint", max_length=64)) -> Response:
        if pool.busy():
            return JSONResponse(status_code=429, headers={"Retry-After": "1"}, content={
                "detail": "every stateless solver is busy and the queue is full (solve_workers + solve_queue); "
                          "retry later", "error": "ResourceExhausted"})
        # Serialised once by pydantic-core; returning the model would re-validate it (~25 ms for 13 splits).
        return Response(content=await pool.solve(problem, solver, scheme), media_type="application/json")

    document_multi_solve(app)  # the multi-device form (answered by MultiSolveMiddleware) in /openapi.json
    add_node_routes(app, live, admin, reader)
    add_plan_routes(app, live, admin, reader)

    @app.get("/healthz", response_class=PlainTextResponse, summary="Liveness: always open, no token")
    async def healthz() -> str:
        return "ok"

    return app
