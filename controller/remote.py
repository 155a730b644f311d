"""`controller plan|nodes|budget|pin|unpin --url URL`: drive a running controller over REST."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import httpx
from rich.console import Console

from controller.cli import register_subcommand
from controller.live import PIN_FIELDS

DEFAULT_URL = os.environ.get("CONTROLLER_URL", "http://127.0.0.1:8080")
console = Console()


def _call(method: str, args: argparse.Namespace, path: str, body: Any = None) -> int:
    try:
        r = httpx.request(method, args.url.rstrip("/") + path, json=body, timeout=args.timeout)
    except httpx.TransportError as exc:
        console.print(f"[red]controller at {args.url} unreachable: {exc}")
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
            raise SystemExit(f"pin {pair!r}: expected KNOB=VALUE with KNOB one of {', '.join(PIN_FIELDS)}")
        pins[key] = int(value) if key == "split" else float(value)
    return pins


def _add(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
    p.add_argument("--url", default=DEFAULT_URL, help="controller REST base URL (env CONTROLLER_URL)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds")
    return p


def add_remote_parsers(subparsers: Any) -> None:
    _add(subparsers, "plan", "show the current plan and its version").set_defaults(
        handler=lambda a: _call("GET", a, "/v1/plan"))
    _add(subparsers, "nodes", "show registered nodes: profiles, telemetry, applied values").set_defaults(
        handler=lambda a: _call("GET", a, "/v1/nodes"))
    b = _add(subparsers, "budget", "change T0/E0 of the live system (re-plan and push)")
    b.add_argument("--latency-s", type=float, required=True)
    b.add_argument("--energy-j", type=float, required=True)
    b.set_defaults(handler=lambda a: _call("PUT", a, "/v1/budget",
                                           {"latency_s": a.latency_s, "energy_j": a.energy_j}))
    p = _add(subparsers, "pin", "pin knobs (KNOB=VALUE ...); the free ones are re-optimised and pushed")
    p.add_argument("pins", nargs="+", metavar="KNOB=VALUE", help=f"knobs: {', '.join(PIN_FIELDS)}")
    p.set_defaults(handler=lambda a: _call("PUT", a, "/v1/pins", _pin_values(a.pins)))
    _add(subparsers, "unpin", "unpin every knob: back to the optimum").set_defaults(
        handler=lambda a: _call("DELETE", a, "/v1/pins"))


register_subcommand("plan", add_remote_parsers)  # adds plan, nodes, budget, pin and unpin
