"""`POST /v1/solve` for the multi-device form: an ASGI middleware in front of the REST app.

A body with a `devices` list is validated and solved here; every other request,
including a one-device problem, reaches the app's own `/v1/solve` unchanged
(its body replayed). Bad input is a 422 whose `detail` has FastAPI's shape
(`loc` starting with "body"); an oversized body is a 413.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from controller.live import LiveSystem
from controller.multi_planner import MultiPlanner
from controller.multi_problem import MultiProblem, is_multi
from controller.solve_pool import SolvePool
from splitbed import errors

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
MAX_BODY = 8 * 1024 * 1024  # bytes: 64 devices x 256 splits with measured points fit well within


async def _send_json(send: Send, status: int, payload: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if status == 429:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None once it exceeds MAX_BODY."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _detail(loc: list[Any], msg: str, kind: str) -> bytes:
    return json.dumps({"detail": [{"type": kind, "loc": loc, "msg": msg}]}).encode()


class MultiSolveMiddleware:
    """Answers multi-device `POST /v1/solve` bodies; passes everything else to the app.

    With a `SolvePool` the solve runs there, like a one-device stateless solve (bounded: 429 when
    full, never on the live planner's thread); without one, on the live system's solver thread.
    """

    def __init__(self, app: ASGIApp, live: LiveSystem, pool: SolvePool | None = None) -> None:
        self.app, self.live, self.pool = app, live, pool
        self.planner = MultiPlanner(live.planner)  # used only on the live system's one solver thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/v1/solve":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await _send_json(send, 413, json.dumps({"detail": f"request body exceeds {MAX_BODY} bytes"}).encode())
            return
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not is_multi(data):
            await self.app(scope, _replay(body, receive), send)
            return
        status, payload = await self._solve(data, parse_qs(scope.get("query_string", b"").decode("latin-1")))
        await _send_json(send, status, payload)

    async def _solve(self, data: Any, query: dict[str, list[str]]) -> tuple[int, bytes]:
        for name, only in (("solver", "exact"), ("scheme", "joint")):
            if any(v != only for v in query.get(name, [])):
                return 422, _detail(["query", name], f"a multi-device problem is solved with {name}={only}",
                                    "value_error")
        try:
            problem = MultiProblem.model_validate(data)
        except ValidationError as exc:
            detail = [{"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
                      for e in exc.errors(include_url=False)]
            return 422, json.dumps({"detail": detail}).encode()
        loop = asyncio.get_running_loop()
        try:
            if self.pool is not None:
                return 200, (await self.pool.solve_multi(problem)).encode()
            answer = await loop.run_in_executor(self.live.solver_pool, self.planner.solve, problem)
        except errors.InvalidArgument as exc:
            return 422, json.dumps({"detail": str(exc), "error": type(exc).__name__}).encode()
        except errors.ResourceExhausted as exc:
            return 429, json.dumps({"detail": str(exc), "error": type(exc).__name__}).encode()
        return 200, answer.model_dump_json().encode()
