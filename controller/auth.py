"""Who may do what on the controller: bearer tokens with roles, and node ids bound to certificates.

`--token-file FILE` holds one `ROLE TOKEN` pair per line (`#` starts a
comment). ROLE is `admin` (budgets, pins, solve, deleting nodes) or
`node:<id>` (register, watch configs, report telemetry and acknowledge as
`<id>`, nothing else). Without a token file every caller is trusted, as
before. With mutual TLS a node's certificate must name (CN or SAN) the node id
it claims, token or not.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from splitbed.errors import InvalidArgument, PermissionDenied, Unauthenticated

NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ADMIN = "admin"


def check_node_id(node_id: str) -> str:
    if not NODE_ID.match(node_id):
        raise InvalidArgument(f"node_id {node_id[:80]!r}: 1-64 characters of A-Z a-z 0-9 . _ -, "
                              "starting with a letter or digit")
    return node_id


@dataclass(frozen=True)
class Principal:
    role: str  # "admin", "node:<id>", or "anonymous" when no token file is configured

    @property
    def is_admin(self) -> bool:
        return self.role in (ADMIN, "anonymous")

    def may_act_as(self, node_id: str) -> bool:
        return self.is_admin or self.role == f"node:{node_id}"


ANONYMOUS = Principal("anonymous")


def load_tokens(path: str | Path) -> dict[str, str]:
    """token -> role from a token file; any malformed line is an error naming its line number."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidArgument(f"token file {str(path)!r} cannot be read: {exc.strerror}") from None
    tokens: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InvalidArgument(f"token file line {lineno}: expected 'ROLE TOKEN'")
        role, token = parts
        if role != ADMIN and not (role.startswith("node:") and NODE_ID.match(role[5:])):
            raise InvalidArgument(f"token file line {lineno}: role {role!r} is not 'admin' or 'node:<id>'")
        if len(token) < 16:
            raise InvalidArgument(f"token file line {lineno}: token shorter than 16 characters")
        if token in tokens:
            raise InvalidArgument(f"token file line {lineno}: token given twice")
        tokens[token] = role
    if not tokens:
        raise InvalidArgument(f"token file {str(path)!r} holds no tokens")
    return tokens


class Authority:
    """Maps an `authorization` value to a principal and enforces the role rules."""

    def __init__(self, tokens: dict[str, str] | None, *, reads_need_token: bool = False) -> None:
        self.tokens = tokens
        self.reads_need_token = reads_need_token

    @property
    def enabled(self) -> bool:
        return self.tokens is not None

    def principal(self, authorization: str | None) -> Principal:
        if self.tokens is None:
            return ANONYMOUS
        if not authorization:
            raise Unauthenticated("this controller needs 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("authorization must be 'Bearer <token>'")
        token = token.strip()
        for known, role in self.tokens.items():  # constant-time compare against each issued token
            if hmac.compare_digest(known.encode(), token.encode()):
                return Principal(role)
        raise Unauthenticated("unknown token")

    def admin(self, authorization: str | None) -> Principal:
        who = self.principal(authorization)
        if not who.is_admin:
            raise PermissionDenied(f"role {who.role!r} may not do this; it needs the admin role")
        return who

    def reader(self, authorization: str | None) -> Principal:
        return self.principal(authorization) if self.reads_need_token else ANONYMOUS

    def node(self, authorization: str | None, node_id: str, cert_names: set[str] | None,
             mutual_tls: bool) -> Principal:
        """The caller may act as `node_id`: its token's role, and its certificate under mutual TLS."""
        check_node_id(node_id)
        who = self.principal(authorization)
        if not who.may_act_as(node_id):
            raise PermissionDenied(f"role {who.role!r} may not act as node {node_id!r}")
        if mutual_tls and who.role != ADMIN and node_id not in (cert_names or set()):
            raise PermissionDenied(f"client certificate names {sorted(cert_names or [])}, not node {node_id!r}")
        return who
