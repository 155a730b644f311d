"""What stands between the network and the REST handlers: body size limit, error mapping, access checks.

Every refusal is a 4xx whose body names the problem (and, for bad input, the
field); nothing here can itself fail on what it is refusing (a NaN in the
input is reported, not serialised).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.auth import NODE_ID, Authority, Principal, check_node_id
from splitbed import errors

# A refused body is read and dropped up to this size before the 413 goes out: closing with unread
# bytes makes the kernel send a reset, and the client never sees the answer. Memory stays flat.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before any handler sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._drain(receive)
            await self._reject(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive)
                await self._reject(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _drain(self, receive: Receive) -> None:
        """Read and drop what the client is still sending (bounded), so it reads the 413 instead of a reset."""
        dropped = 0
        while dropped <= DRAIN_LIMIT_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            dropped += len(message.get("body", b""))

    async def _reject(self, send: Send) -> None:
        body = (b'{"detail": "request body larger than %d bytes (max_body_bytes)", "error": "PayloadTooLarge"}'
                % self.max_bytes)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class AdminOnly:
    """ASGI middleware: POSTs to `paths` need the admin role, whichever handler (or middleware) serves them."""

    def __init__(self, app: ASGIApp, authority: Authority, paths: tuple[str, ...]) -> None:
        self.app, self.authority, self.paths = app, authority, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/") in self.paths:
            auth = dict(scope.get("headers") or []).get(b"authorization")
            try:
                self.authority.admin(auth.decode("latin-1") if auth is not None else None)
            except errors.SplitbedError as exc:
                body = json.dumps({"detail": str(exc), "error": type(exc).__name__}).encode()
                headers = [(b"content-type", b"application/json")]
                if exc.http_status == 401:
                    headers.append((b"www-authenticate", b"Bearer"))
                await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _safe(value: Any) -> Any:
    """JSON-safe copy of a validation error's input: non-finite numbers become their names."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in list(value.items())[:20]}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value[:20]]
    if isinstance(value, str | int | float | bool) or value is None:
        return value if not isinstance(value, str) else value[:200]
    return repr(value)[:200]


def validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", ""),
             "input": _safe(e.get("input"))} for e in exc.errors()[:50]]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.SplitbedError)
    async def _domain_error(request: Request, exc: errors.SplitbedError) -> JSONResponse:
        code = exc.http_status  # the one table: splitbed.errors
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse(status_code=code, content={"detail": str(exc), "error": type(exc).__name__},
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = validation_detail(exc)
        message = "; ".join(f"{'.'.join(str(x) for x in d['loc'])}: {d['msg']}" for d in detail)
        return JSONResponse(status_code=422, content={"detail": detail, "message": message})


Check = Callable[[Request], Awaitable[Principal]]


def access(authority: Authority) -> tuple[Check, Check]:
    """FastAPI dependencies: (admin, reader) for the routes that change or show the live system."""

    async def admin(request: Request) -> Principal:
        return authority.admin(request.headers.get("authorization"))

    async def reader(request: Request) -> Principal:
        return authority.reader(request.headers.get("authorization"))

    return admin, reader


def node_id_param(node_id: str = Path(pattern=NODE_ID.pattern, max_length=64,
                                     description="node id: 1-64 of A-Z a-z 0-9 . _ -")) -> str:
    """Path parameter check: a malformed id is 422, never a lookup."""
    return check_node_id(node_id)
