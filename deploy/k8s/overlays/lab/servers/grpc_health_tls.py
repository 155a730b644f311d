"""Kubernetes exec probe: grpc.health.v1 Check over mutual TLS; exit 0 when SERVING.

The kubelet's native gRPC probe dials plaintext and presents no client
certificate, so it cannot check a server that requires mutual TLS. This runs
inside the server's own container and makes the same Check with the pod's
own certificate, key and CA, read from the service's settings environment:

    python3 grpc_health_tls.py --env-prefix EDGE_ [--service NAME] PORT

reads EDGE_TLS_CERT, EDGE_TLS_KEY and EDGE_TLS_CA. The certificates made by
make-secrets.sh name `localhost`, the address probed. Exit codes: 0 SERVING,
1 any other status, 2 the Check failed (connection, TLS, deadline).
Only grpcio and grpcio-health-checking, which every image has, are used.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def credentials(prefix: str) -> grpc.ChannelCredentials:
    paths = {}
    for name in ("TLS_CERT", "TLS_KEY", "TLS_CA"):
        value = os.environ.get(prefix + name)
        if not value:
            raise SystemExit(f"probe: {prefix}{name} is not set")
        paths[name] = Path(value)
    return grpc.ssl_channel_credentials(
        root_certificates=paths["TLS_CA"].read_bytes(),
        private_key=paths["TLS_KEY"].read_bytes(),
        certificate_chain=paths["TLS_CERT"].read_bytes(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="the server's gRPC port")
    parser.add_argument("--env-prefix", required=True, help="settings prefix: CONTROLLER_, EDGE_ or AGENT_")
    parser.add_argument("--service", default="", help="service name to check ('' = the whole server)")
    parser.add_argument("--host", default="localhost", help="host to dial; must be named in the certificate")
    parser.add_argument("--timeout", type=float, default=3.0, help="deadline of the Check, seconds")
    args = parser.parse_args(argv)
    creds = credentials(args.env_prefix)
    with grpc.secure_channel(f"{args.host}:{args.port}", creds) as channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            print(f"probe: {getattr(code, 'name', 'ERROR')}: {exc}", file=sys.stderr)
            return 2
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    print(f"probe: {args.service or '(server)'} {status}")
    return 0 if resp.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
