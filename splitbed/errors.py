"""Domain errors shared by every process, each carrying its gRPC status and HTTP code.

Code raises these; the transports read the codes off the class
(`splitbed.grpc_errors` for gRPC, the controller's FastAPI handler for HTTP),
so the table lives in exactly one place and a bad request never surfaces as a
blanket INTERNAL / 500. The gRPC code is held by name so this module imports
neither grpc nor anything else.
"""

from __future__ import annotations

from typing import ClassVar


class SplitbedError(Exception):
    """Base class of every error the testbed raises on purpose (unclassified: INTERNAL / 500)."""

    grpc_code: ClassVar[str] = "INTERNAL"
    http_status: ClassVar[int] = 500
    # The server's hint when trying again is sensible, s (sent as `retry-after-ms` trailing metadata); None = no hint.
    retry_after_s: float | None = None


class InvalidArgument(SplitbedError):
    """The request itself is malformed (dtype, shape, length, NaN, out-of-range value)."""

    grpc_code = "INVALID_ARGUMENT"
    http_status = 422


class NotFound(SplitbedError):
    """A named thing (model, node, config version, sysfs file) does not exist."""

    grpc_code = "NOT_FOUND"
    http_status = 404


class FailedPrecondition(SplitbedError):
    """The request is well formed but the system is not in a state to serve it."""

    grpc_code = "FAILED_PRECONDITION"
    http_status = 409


class Unavailable(SplitbedError):
    """A peer or a resource is temporarily unreachable; retrying may succeed."""

    grpc_code = "UNAVAILABLE"
    http_status = 503


class PermissionDenied(SplitbedError):
    """The process lacks the OS permission a hardware knob needs; the message says how to grant it."""

    grpc_code = "PERMISSION_DENIED"
    http_status = 403


class ResourceExhausted(SplitbedError):
    """A size or rate limit was exceeded."""

    grpc_code = "RESOURCE_EXHAUSTED"
    http_status = 413


class Unauthenticated(SplitbedError):
    """No credentials, or credentials nobody issued."""

    grpc_code = "UNAUTHENTICATED"
    http_status = 401


def error_classes() -> list[type[SplitbedError]]:
    """Every domain error class defined so far (subclasses of subclasses included), most specific first."""
    found: list[type[SplitbedError]] = []
    pending = list(SplitbedError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found[::-1]
