"""Domain errors shared by every process.

Code raises these; exactly one place per transport translates them
(`splitbed.grpc_errors` for gRPC, the controller's FastAPI handlers for HTTP),
so a bad request never surfaces as a blanket INTERNAL / 500.
"""

from __future__ import annotations


class SplitbedError(Exception):
    """Base class of every error the testbed raises on purpose."""


class InvalidArgument(SplitbedError):
    """The request itself is malformed (dtype, shape, length, NaN, out-of-range value)."""


class NotFound(SplitbedError):
    """A named thing (model, node, config version, sysfs file) does not exist."""


class FailedPrecondition(SplitbedError):
    """The request is well formed but the system is not in a state to serve it."""


class Unavailable(SplitbedError):
    """A peer or a resource is temporarily unreachable; retrying may succeed."""


class PermissionDenied(SplitbedError):
    """The process lacks the OS permission a hardware knob needs; the message says how to grant it."""


class ResourceExhausted(SplitbedError):
    """A size or rate limit was exceeded."""


class Unauthenticated(SplitbedError):
    """No credentials, or credentials nobody issued (HTTP 401, gRPC UNAUTHENTICATED)."""
