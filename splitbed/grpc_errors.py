"""The one place where domain errors and gRPC status codes are translated.

Servers install `ErrorMappingInterceptor`, so servicers raise `splitbed.errors`
exceptions and clients see precise codes (never a blanket INTERNAL for a bad
request). Clients call `translate_rpc_error` to turn a gRPC error back into a
domain error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from splitbed import errors
from splitbed.grpc_catchall import Deserializer, drop_tracebacks, internal, parse, parse_stream, set_retry_hint

logger = logging.getLogger(__name__)


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The status a domain error carries (`errors.SplitbedError.grpc_code`); INTERNAL for anything else."""
    if isinstance(exc, errors.SplitbedError):
        return grpc.StatusCode[exc.grpc_code]
    return grpc.StatusCode.INTERNAL


def translate_rpc_error(exc: grpc.RpcError) -> errors.SplitbedError:
    """Map a client-side gRPC error to the domain error of the same meaning."""
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    for cls in errors.error_classes():
        if code is not None and code.name == cls.grpc_code:
            return cls(details or str(code))
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return errors.Unavailable(f"{code.name}: {details}")
    return errors.SplitbedError(f"{code}: {details}")


async def _abort(context: aio.ServicerContext, exc: errors.SplitbedError) -> None:
    code = status_for(exc)
    logger.info("rejecting request with %s: %s", code.name, exc)
    set_retry_hint(context, exc)
    drop_tracebacks(exc)
    await context.abort(code, str(exc))


def _wrap_unary(fn: Callable[..., Awaitable[Any]], deser: Deserializer, method: str,
                stream_in: bool) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: aio.ServicerContext) -> Any:
        seen: list[Any] = [None]
        try:
            if stream_in:
                return await fn(parse_stream(deser, request, seen), context)
            seen[0] = await parse(deser, request)
            return await fn(seen[0], context)
        except errors.SplitbedError as exc:
            await _abort(context, exc)
        except aio.AbortError:
            raise
        except Exception as exc:
            await internal(context, method, seen[0], exc)

    return wrapper


def _wrap_stream(fn: Callable[..., AsyncIterator[Any]], deser: Deserializer, method: str,
                 stream_in: bool) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        seen: list[Any] = [None]
        try:
            if stream_in:
                request = parse_stream(deser, request, seen)
            else:
                request = seen[0] = await parse(deser, request)
            async for item in fn(request, context):
                yield item
        except errors.SplitbedError as exc:
            await _abort(context, exc)
        except aio.AbortError:
            raise
        except Exception as exc:
            await internal(context, method, seen[0], exc)

    return wrapper


class ErrorMappingInterceptor(aio.ServerInterceptor):
    """Turns `SplitbedError`s raised by any servicer method into their status code; anything else is INTERNAL."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        # Requests arrive as bytes and are parsed by the wrapper (bad protobuf -> INVALID_ARGUMENT).
        kwargs = {"request_deserializer": None, "response_serializer": handler.response_serializer}
        deser, method = handler.request_deserializer, handler_call_details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_wrap_unary(handler.unary_unary, deser, method, False), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_wrap_unary(handler.stream_unary, deser, method, True),
                                                        **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_wrap_stream(handler.unary_stream, deser, method, False),
                                                        **kwargs)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(_wrap_stream(handler.stream_stream, deser, method, True),
                                                         **kwargs)
        return handler
