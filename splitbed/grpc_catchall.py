"""What the error interceptor does beyond the domain-error table: parse, catch-all, retry hint.

- Requests are parsed here, not by gRPC, so undecodable protobuf is answered
  INVALID_ARGUMENT (gRPC's own deserializer failure surfaces as UNKNOWN).
  Large messages are parsed on a worker thread, off the event loop.
- An exception that is not a `SplitbedError` is a bug: it is logged with its
  traceback and the request id, counted in `splitbed_grpc_unhandled_errors`
  and answered INTERNAL (never UNKNOWN, never a traceback to the client).
- A domain error with a `retry_after_s` hint (a server bound reached) sends it as trailing metadata.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc import aio
from prometheus_client import Counter

from splitbed.errors import InvalidArgument, SplitbedError
from splitbed.resilience import RETRY_AFTER_KEY

logger = logging.getLogger(__name__)

# Parsing a message this large takes milliseconds: it goes to a worker thread.
OFFLOAD_BYTES = 1 << 20

# Registered in every process's Metrics registry (splitbed.metrics).
UNHANDLED = Counter("splitbed_grpc_unhandled_errors", "Servicer exceptions that were not domain errors (bugs), "
                    "answered INTERNAL.", ["method", "exception"], registry=None)

Deserializer = Callable[[Any], Any] | None


async def parse(deserializer: Deserializer, raw: Any) -> Any:
    """The request message from its wire bytes; InvalidArgument when they are not valid protobuf."""
    if deserializer is None or not isinstance(raw, bytes | bytearray | memoryview):
        return raw
    try:
        if len(raw) >= OFFLOAD_BYTES:
            return await asyncio.to_thread(deserializer, raw)
        return deserializer(raw)
    except (DecodeError, ValueError, TypeError) as exc:
        raise InvalidArgument(f"request is not a valid protobuf message ({len(raw)} bytes): {exc}") from None


async def parse_stream(deserializer: Deserializer, raw: AsyncIterator[Any], seen: list[Any]) -> AsyncIterator[Any]:
    """Parse a request stream item by item; the latest request is kept in `seen[0]` for error logs."""
    async for item in raw:
        message = await parse(deserializer, item)
        seen[:] = [message]
        yield message


def request_id(request: Any, context: aio.ServicerContext) -> str:
    for field in ("request_id", "node_id"):
        value = getattr(request, field, "")
        if value:
            return f"{field}={value}"
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return f"x-request-id={value}"
    return f"unnamed-{uuid.uuid4().hex[:8]}"


async def internal(context: aio.ServicerContext, method: str, request: Any, exc: BaseException) -> None:
    """The catch-all: log with the request id, count, answer INTERNAL."""
    rid = request_id(request, context)
    UNHANDLED.labels(method, type(exc).__name__).inc()
    logger.error("unhandled %s in %s (%s)", type(exc).__name__, method, rid, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method} ({rid}): {type(exc).__name__}; "
                                                  "see the server log")


def drop_tracebacks(exc: BaseException | None) -> None:
    """Cut an answered error's tracebacks (and its chain's).

    A servicer that catches an error, counts it and re-raises leaves a cycle
    (error -> traceback -> frame -> error); the frames hold the request and its
    decoded tensors, so each rejected large message would stay in memory until
    the cyclic GC happens to run.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


def set_retry_hint(context: aio.ServicerContext, exc: BaseException) -> None:
    hint = exc.retry_after_s if isinstance(exc, SplitbedError) else None
    if hint is not None:
        context.set_trailing_metadata(((RETRY_AFTER_KEY, str(round(float(hint) * 1000))),))
