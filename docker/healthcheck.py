"""Container health probe: exit 0 when a gRPC health service answers SERVING, 1 otherwise.

Copied into the images as /opt/splitbed/healthcheck.py and used by the
Dockerfile's HEALTHCHECK and by docker-compose.yml:

    python3 /opt/splitbed/healthcheck.py HOST:PORT [SERVICE] [--timeout S]
        [--tls-ca CA.pem [--tls-cert CERT.pem --tls-key KEY.pem]]

With TLS on, the probe dials TLS (verifying the server against --tls-ca) and,
where the server requires mutual TLS, presents a certificate: in compose each
container probes itself with its own certificate. The flags default to
HEALTHCHECK_TLS_CA / _CERT / _KEY from the environment.

SERVICE defaults to "" (the whole server); the controller also registers
"splitbed.v1.ControlService". It lives under docker/ rather than splitbed/
because only the images need it; it uses nothing but grpcio-health-checking,
which every image has.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _channel(address: str, ca: str | None, cert: str | None, key: str | None) -> grpc.Channel:
    if not ca:
        return grpc.insecure_channel(address)
    read = lambda p: Path(p).read_bytes() if p else None  # noqa: E731
    creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
    return grpc.secure_channel(address, creds)


def check(address: str, service: str = "", timeout_s: float = 3.0, ca: str | None = None, cert: str | None = None,
          key: str | None = None) -> tuple[bool, str]:
    """(serving, what was seen) for one Check call on ``address``."""
    with _channel(address, ca, cert, key) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            return False, f"{getattr(code, 'name', 'ERROR')}: {detail}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    return resp.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="gRPC address host:port")
    parser.add_argument("service", nargs="?", default="", help='health service name ("" = the server)')
    parser.add_argument("--timeout", type=float, default=3.0, help="deadline of the Check call, seconds")
    for part in ("ca", "cert", "key"):
        parser.add_argument(f"--tls-{part}", default=os.environ.get(f"HEALTHCHECK_TLS_{part.upper()}") or None,
                            help=f"PEM {part} (env HEALTHCHECK_TLS_{part.upper()})")
    args = parser.parse_args(argv)
    ok, seen = check(args.address, args.service, args.timeout, args.tls_ca, args.tls_cert, args.tls_key)
    name = args.service or '""'
    print(f"{args.address} {name}: {seen}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
