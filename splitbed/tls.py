"""TLS and bearer tokens for every listener and client of the testbed, in one place.

A process is given up to three PEM files: its certificate and key (it then
serves TLS, and presents them as a client), and a CA (a server then requires
client certificates signed by it: mutual TLS; a client verifies the server
against it). Servers and clients of gRPC and of the controller's REST API
all build their credentials here, so the rules are the same everywhere.

Tokens travel as `authorization: Bearer <token>` (HTTP header or gRPC
metadata); a node reads its own from `--token` or `--token-file`.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc import aio
from pydantic import Field

from splitbed.errors import InvalidArgument

TLS_CERT_FIELD: Any = Field(None, description="PEM certificate of this process (with --tls-key: serve and dial TLS).")
TLS_KEY_FIELD: Any = Field(None, description="PEM private key of --tls-cert.")
TLS_CA_FIELD: Any = Field(None, description="PEM CA: servers then require client certificates signed by it (mutual "
                          "TLS); clients verify their server against it.")
TOKEN_FIELD: Any = Field(None, description="Bearer token presented to the controller (see docs/security.md).")
TOKEN_FILE_FIELD: Any = Field(None, description="File holding the bearer token presented to the controller.")


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files one process was given; all None = plaintext."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None

    @classmethod
    def of(cls, settings: Any) -> TlsFiles:
        """From any settings object with tls_cert / tls_key / tls_ca fields (missing ones count as unset)."""
        files = cls(getattr(settings, "tls_cert", None), getattr(settings, "tls_key", None),
                    getattr(settings, "tls_ca", None))
        if (files.cert is None) != (files.key is None):
            raise InvalidArgument("tls_cert and tls_key go together: give both or neither")
        return files

    @property
    def serves_tls(self) -> bool:
        return self.cert is not None

    @property
    def dials_tls(self) -> bool:
        return self.cert is not None or self.ca is not None

    @property
    def mutual(self) -> bool:
        return self.cert is not None and self.ca is not None


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"{what} {path!r} cannot be read: {exc.strerror}") from None


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials | None:
    """gRPC server credentials (client certificates required when a CA is given); None = plaintext."""
    if not files.serves_tls:
        return None
    key, cert = _read(files.key, "tls_key"), _read(files.cert, "tls_cert")
    assert key is not None and cert is not None
    ca = _read(files.ca, "tls_ca")
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials | None:
    """gRPC client credentials: verify the server (CA, else system roots), present our cert if we have one."""
    if not files.dials_tls:
        return None
    return grpc.ssl_channel_credentials(root_certificates=_read(files.ca, "tls_ca"),
                                        private_key=_read(files.key, "tls_key"),
                                        certificate_chain=_read(files.cert, "tls_cert"))


def read_token(token: str | None, token_file: str | None) -> str | None:
    """The bearer token a client presents: given inline, or the first non-comment line of a file."""
    if token:
        return token.strip()
    if not token_file:
        return None
    text = _read(token_file, "token_file")
    assert text is not None
    lines = [ln.strip() for ln in text.decode().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise InvalidArgument(f"token_file {token_file!r} holds no token")
    return lines[0].split()[-1]  # "TOKEN" or "ROLE TOKEN"


class _Token:
    """Adds `authorization: Bearer <token>` to a call's metadata."""

    def __init__(self, token: str) -> None:
        self._pair = ("authorization", f"Bearer {token}")

    def _details(self, details: aio.ClientCallDetails) -> aio.ClientCallDetails:
        metadata = aio.Metadata(*(details.metadata or ()), self._pair)
        return aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                     details.wait_for_ready)


# Two classes: grpc.aio files each interceptor under one call type only (the first base it matches).
class _UnaryToken(_Token, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: aio.ClientCallDetails,
                                    request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamToken(_Token, aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: aio.ClientCallDetails,
                                     request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


def aio_channel(address: str, files: TlsFiles = TlsFiles(), *, token: str | None = None,
                options: Sequence[tuple[str, Any]] | None = None) -> aio.Channel:
    """A grpc.aio channel: TLS when `files` say so, the bearer token on every call when given."""
    interceptors: list[Any] | None = [_UnaryToken(token), _StreamToken(token)] if token else None
    creds = channel_credentials(files)
    if creds is None:
        return aio.insecure_channel(address, options=options, interceptors=interceptors)
    return aio.secure_channel(address, creds, options=options, interceptors=interceptors)


def sync_channel(address: str, files: TlsFiles = TlsFiles()) -> grpc.Channel:
    """A blocking channel (health probes, tests): TLS when `files` say so."""
    creds = channel_credentials(files)
    return grpc.insecure_channel(address) if creds is None else grpc.secure_channel(address, creds)


def uvicorn_ssl_kwargs(files: TlsFiles) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for HTTPS (client certificates required when a CA is given)."""
    if not files.serves_tls:
        return {}
    kwargs: dict[str, Any] = {"ssl_certfile": files.cert, "ssl_keyfile": files.key}
    if files.ca is not None:
        kwargs.update(ssl_ca_certs=files.ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return kwargs


def httpx_ssl_context(files: TlsFiles) -> ssl.SSLContext | bool:
    """httpx `verify=`: a context trusting the CA (or system roots) and presenting our cert, if any."""
    if not files.dials_tls:
        return True
    ctx = ssl.create_default_context(cafile=files.ca)
    if files.cert is not None and files.key is not None:
        ctx.load_cert_chain(files.cert, files.key)
    return ctx


def peer_names(context: Any) -> set[str] | None:
    """CN and SAN names of a gRPC peer's verified client certificate; None when the peer showed none."""
    auth = context.auth_context() or {}
    names = {v.decode() for key in ("x509_common_name", "x509_subject_alternative_name") for v in auth.get(key, [])}
    return names or None
