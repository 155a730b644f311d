"""`controller plan|nodes|budget|pin|unpin --url URL`: drive a running controller over REST.

TLS and tokens: `--tls-ca` (verify the controller), `--tls-cert/--tls-key`
(present a client certificate, for mutual TLS), `--token`/`--token-file`
(the admin token for writes). Environment: CONTROLLER_URL and
CONTROLLER_CLIENT_{TLS_CA,TLS_CERT,TLS_KEY,TOKEN,TOKEN_FILE}. Bad values and
URLs are a one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Any

import httpx
from rich.console import Console

from controller.cli import register_subcommand
from controller.push import PIN_FIELDS
from splitbed.errors import InvalidArgument
from splitbed.tls import TlsFiles, httpx_ssl_context, read_token

DEFAULT_URL = os.environ.get("CONTROLLER_URL", "http://127.0.0.1:8080")
ENV = "CONTROLLER_CLIENT_"
console = Console()
err_console = Console(stderr=True)


def finite_positive(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite positive number")
    return value


def base_url(text: str) -> str:
    """argparse type: an http(s) URL with a host."""
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host or " " in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL with a host")
    return text.rstrip("/")


def _client(args: argparse.Namespace) -> httpx.Client:
    files = TlsFiles.of(args)
    token = read_token(args.token, args.token_file)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(verify=httpx_ssl_context(files), headers=headers, timeout=args.timeout)


def _call(method: str, args: argparse.Namespace, path: str, body: Any = None) -> int:
    try:
        if callable(body):
            body = body(args)
        with _client(args) as client:
            r = client.request(method, args.url + path, json=body)
    except InvalidArgument as exc:
        err_console.print(f"error: {exc}", soft_wrap=True)
        return 2
    except httpx.TransportError as exc:
        err_console.print(f"[red]controller at {args.url} unreachable: {exc}", soft_wrap=True)
        return 3
    try:
        payload = r.json()
    except ValueError:
        payload = r.text
    console.print_json(json.dumps(payload))
    return 0 if r.is_success else 1


def _pin_values(pairs: list[str]) -> dict[str, float]:
    pins: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in PIN_FIELDS:
            raise InvalidArgument(f"pin {pair!r}: expected KNOB=VALUE with KNOB one of {', '.join(PIN_FIELDS)}")
        try:
            number = int(value) if key == "split" else float(value)
        except ValueError:
            kind = "an integer" if key == "split" else "a number"
            raise InvalidArgument(f"pin {pair!r}: {value!r} is not {kind}") from None
        if not math.isfinite(number) or number < 0:
            raise InvalidArgument(f"pin {pair!r}: must be finite and non-negative")
        pins[key] = number
    return pins


def _add(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
    p.add_argument("--url", type=base_url, default=DEFAULT_URL, help="controller REST base URL (env CONTROLLER_URL)")
    p.add_argument("--timeout", type=finite_positive, default=120.0, help="seconds")
    for flag, what in (("tls-ca", "PEM CA to verify the controller with"),
                       ("tls-cert", "PEM client certificate (mutual TLS)"), ("tls-key", "PEM key of --tls-cert"),
                       ("token", "bearer token (admin for writes)"), ("token-file", "file holding the token")):
        env = ENV + flag.upper().replace("-", "_")
        p.add_argument(f"--{flag}", default=os.environ.get(env) or None, help=f"{what} (env {env})")
    return p


def add_remote_parsers(subparsers: Any) -> None:
    _add(subparsers, "plan", "show the current plan and its version").set_defaults(
        handler=lambda a: _call("GET", a, "/v1/plan"))
    _add(subparsers, "nodes", "show registered nodes: profiles, telemetry, applied values").set_defaults(
        handler=lambda a: _call("GET", a, "/v1/nodes"))
    b = _add(subparsers, "budget", "change T0/E0 of the live system (re-plan and push)")
    b.add_argument("--latency-s", type=finite_positive, required=True)
    b.add_argument("--energy-j", type=finite_positive, required=True)
    b.set_defaults(handler=lambda a: _call("PUT", a, "/v1/budget",
                                           {"latency_s": a.latency_s, "energy_j": a.energy_j}))
    p = _add(subparsers, "pin", "pin knobs (KNOB=VALUE ...); the free ones are re-optimised and pushed")
    p.add_argument("pins", nargs="+", metavar="KNOB=VALUE", help=f"knobs: {', '.join(PIN_FIELDS)}")
    p.set_defaults(handler=lambda a: _call("PUT", a, "/v1/pins", lambda args: _pin_values(args.pins)))
    _add(subparsers, "unpin", "unpin every knob: back to the optimum").set_defaults(
        handler=lambda a: _call("DELETE", a, "/v1/pins"))


register_subcommand("plan", add_remote_parsers)  # adds plan, nodes, budget, pin and unpin
