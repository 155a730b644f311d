"""Keepalive, reconnect and retry-hint settings shared by every gRPC client and server of the testbed.

Long-lived streams (inference, control) send HTTP/2 pings every
`keepalive_s` so a dead peer or a silently dropped NAT entry is noticed
within `keepalive_s + keepalive_timeout_s` instead of at the next request's
deadline. Servers accept pings that often (otherwise gRPC answers a client's
pings with GOAWAY "too_many_pings"). A server past one of its bounds answers
RESOURCE_EXHAUSTED with a `retry-after-ms` trailing metadata entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from splitbed.errors import ResourceExhausted

RETRY_AFTER_KEY = "retry-after-ms"


@dataclass(frozen=True)
class Keepalive:
    """keepalive_s: ping interval, s; keepalive_timeout_s: wait for the ping's answer, s;
    reconnect_max_s: largest wait between the channel's own reconnect attempts, s."""

    keepalive_s: float = 20.0
    keepalive_timeout_s: float = 10.0
    reconnect_max_s: float = 2.0

    def client_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.keepalive_time_ms", int(self.keepalive_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_s * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", int(self.reconnect_max_s * 1000)),
        ]

    def server_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.keepalive_time_ms", int(self.keepalive_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_s * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            # Accept client pings this often (the default, 5 min, makes gRPC drop keepalive clients).
            ("grpc.http2.min_recv_ping_interval_without_data_ms", int(self.keepalive_s * 500)),
            ("grpc.http2.min_ping_interval_without_data_ms", int(self.keepalive_s * 500)),
        ]


def overloaded(message: str, retry_after_s: float = 0.5) -> ResourceExhausted:
    """A server bound was reached: RESOURCE_EXHAUSTED with the hint when trying again is sensible.

    Not a subclass of its own: the error table (`splitbed.errors`) has one class per status code.
    """
    exc = ResourceExhausted(message)
    exc.retry_after_s = retry_after_s
    return exc


def retry_after_s(exc: grpc.RpcError) -> float | None:
    """The server's retry hint from a failed call's trailing metadata, in seconds, if any."""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == RETRY_AFTER_KEY:
            try:
                return max(0.0, float(value) / 1000.0)
            except (TypeError, ValueError):
                return None
    return None
