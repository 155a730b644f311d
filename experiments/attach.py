"""Attach mode (`experiments run ... --controller URL`): a controller and an edge server the user started.

The driver still launches its own device agent (the paper's device emulated, the uplink paced at the paper's
channel), and sets budget and pins per point through REST, as in the self-started testbed. What REST cannot
set — the edge server's model, emulated clock and energy constants, the controller's pruning method, scheme,
solver, encoding and kept-ratio floors — must be what the self-started testbed uses, or the rows would not be
the figure's live setting (and a controller that cannot plan at all would read as "every point infeasible").
`verify` checks each of them on what the controller shows (`GET /v1/nodes`, `GET /v1/plan`, the answer to
`PUT /v1/pins`) and fails naming every mismatch and the command lines that match.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from experiments.config import LiveSpec
from experiments.testbed import (
    DEVICE_ID,
    HUGE_ENERGY_J,
    HUGE_LATENCY_S,
    SERVER_POWER_COEFF,
    SERVER_PUE,
    AttachMismatch,
    Testbed,
)

__all__ = ["AttachMismatch", "commands", "prepare", "verify"]


def commands(lv: LiveSpec, prune_method: str, grpc_address: str = "127.0.0.1:50052",
             url: str = "http://127.0.0.1:8080") -> str:
    """The command lines that start a controller and an edge server this sweep can attach to."""
    port = grpc_address.rsplit(":", 1)[-1]
    rest_port = urlparse(url).port or 8080
    return (f"  controller serve --grpc-port {port} --rest-port {rest_port} --method {prune_method} "
            f"--encoding {lv.encoding} --rho-min-device {lv.rho_min:g} --rho-min-server {lv.rho_min:g}\n"
            f"  edge-server serve --controller {grpc_address} --model {lv.model} --clock emulated "
            f"--clock-profile {lv.server_clock_profile} --pue {SERVER_PUE:g} --power-coeff {SERVER_POWER_COEFF:g} "
            f"--profile-seq-len {lv.seq_len}\n"
            "  (add --host-flops-per-s F to the edge server if a busy host measures slower than the profile)")


def check_grpc_reachable(address: str) -> None:
    """The agent registers over gRPC; REST does not tell that address, so fail early if nothing listens."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5):
            return
    except (OSError, ValueError) as exc:
        raise AttachMismatch(f"nothing accepts connections at the controller's gRPC address {address} ({exc}): "
                             "pass --controller-grpc HOST:PORT with the port `controller serve --grpc-port` "
                             "listens on (default 50052)") from None


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel)


def server_problems(server: dict[str, Any], lv: LiveSpec) -> list[str]:
    """What in the edge server's registered profile differs from the live setting."""
    from splitbed.hw.clock.profiles import get_profile

    name, prof = server["node_id"], server.get("profile") or {}
    c = prof.get("compute") or {}
    out = []
    if prof.get("model") != lv.model:
        out.append(f"edge server {name} serves model {prof.get('model')!r}, the sweep runs {lv.model!r} (--model)")
    want = get_profile(lv.server_clock_profile)
    if c.get("clock_backend") != "emulated":
        out.append(f"edge server {name} runs clock backend {c.get('clock_backend')!r} (host speed), the sweep "
                   f"emulates {want.name!r} (--clock emulated --clock-profile {want.name})")
    elif not (_close(c.get("f_max_hz", 0), want.f_max_hz) and _close(c.get("f_min_hz", 0), want.f_min_hz)
              and float(c.get("flops_per_cycle", 0)) <= 1.2 * want.flops_per_cycle):
        out.append(f"edge server {name} emulates f_max {c.get('f_max_hz', 0) / 1e6:.0f} MHz x "
                   f"{c.get('flops_per_cycle', 0):.1f} FLOPs/cycle, not profile {want.name!r} "
                   f"({want.f_max_hz / 1e6:.0f} MHz x {want.flops_per_cycle:g}; --clock-profile {want.name})")
    for key, flag, value in (("pue", "--pue", SERVER_PUE), ("power_coeff", "--power-coeff", SERVER_POWER_COEFF)):
        if not _close(c.get(key) or 0.0, value):
            out.append(f"edge server {name} has {key} {c.get(key)}, the sweep's energy model uses {value:g} "
                       f"({flag} {value:g})")
    return out


def plan_problems(plan: dict[str, Any], lv: LiveSpec, prune_method: str) -> list[str]:
    """What in the controller's own settings, as its current plan shows them, differs from the live setting."""
    config, ans = plan.get("config") or {}, plan.get("answer") or {}
    out = []
    if config.get("method") != prune_method:
        out.append(f"controller pushes pruning method {config.get('method')!r}, this panel needs {prune_method!r} "
                   f"(controller serve --method {prune_method})")
    if config.get("encoding") not in ("", None, lv.encoding):
        out.append(f"controller pushes encoding {config.get('encoding')!r}, the sweep sends {lv.encoding!r} "
                   f"(controller serve --encoding {lv.encoding}, or leave it unset)")
    for key, want, flag in (("scheme", "joint", "--scheme joint"), ("solver", "exact", "--solver exact"),
                            ("objective", "bound", "the default objective")):
        if ans.get(key) != want:
            out.append(f"controller plans with {key} {ans.get(key)!r}, the sweep sets schemes by pins on top of "
                       f"{want!r} ({flag})")
    return out


def rho_floor_problems(tb: Testbed, lv: LiveSpec) -> list[str]:
    """The controller's kept-ratio floors are not on REST; a pin just at and just below the sweep's floor
    tells them apart (a pin under the controller's floor is refused as outside the system)."""
    out = []
    floor = lv.rho_min or 1e-6  # a pin must be > 0
    for side in ("device", "server"):
        at = _pin_accepted(tb, {f"rho_{side}": floor})
        below = lv.rho_min > 0 and _pin_accepted(tb, {f"rho_{side}": floor * (1 - 1e-3)})
        if not at or below:
            out.append(f"controller's rho_min_{side} is {'above' if not at else 'below'} the sweep's {lv.rho_min:g} "
                       f"(controller serve --rho-min-{side} {lv.rho_min:g})")
    tb.http.delete(tb.url + "/v1/pins").raise_for_status()
    return out


def _pin_accepted(tb: Testbed, pins: dict[str, float]) -> bool:
    code, body = tb.put("/v1/pins", pins)
    if code == 200:
        return True
    if "below rho_min" in str(body):
        return False
    raise AttachMismatch(f"PUT /v1/pins {pins} at an unbounded budget -> {code}: {body}")


def check_admin(tb: Testbed) -> None:
    """The driver may set budgets and pins: a solve with no body is refused for its body (422) when the
    token is good, for the token (401/403) when not, and changes nothing either way."""
    code = tb.http.post(tb.url + "/v1/solve", content=b"").status_code
    if code in (401, 403):
        given = "the token of --token-file is not its admin token" if tb.token else \
            "it was started with --token-file and the driver sent no token"
        raise AttachMismatch(f"the controller at {tb.url} refused the driver's REST calls ({code}): {given}; "
                             "pass --token-file FILE holding its admin token (used for REST and by the "
                             "driver's agent)")


def prepare(tb: Testbed, lv: LiveSpec, register: Callable[[], None]) -> None:
    """Check what can be checked before the agent starts, `register` the driver's agent, then `verify`."""
    check_admin(tb)
    check_grpc_reachable(tb.control_address)
    problems = server_problems(tb.server(), lv)
    if problems:
        raise AttachMismatch(f"the edge server attached at {tb.url} is not this sweep's live setting:\n- "
                             + "\n- ".join(problems) + "\nStart them as (then run the sweep again):\n"
                             + commands(lv, tb.method, tb.control_address, tb.url))
    register()
    verify(tb, lv)


def verify(tb: Testbed, lv: LiveSpec) -> None:
    """After the driver's agent registered: fail, naming every mismatch, unless the attached system is the
    sweep's live setting. Leaves the budget unbounded and no pins (each point sets both)."""
    problems: list[str] = []
    devices = tb.nodes("device")
    if not any(n["node_id"] == DEVICE_ID for n in devices):
        raise AttachMismatch(f"the driver's agent registered over gRPC at {tb.control_address}, but the controller "
                             f"at {tb.url} does not list {DEVICE_ID!r}: that gRPC address belongs to another "
                             "controller (pass --controller-grpc HOST:PORT)")
    others = [n["node_id"] for n in devices if n["node_id"] != DEVICE_ID]
    if others:
        problems.append(f"other live device agents are registered ({', '.join(others)}): the controller would plan "
                        "them as a group with the sweep's agent (stop them, or DELETE /v1/nodes/ID)")
    problems += server_problems(tb.server(), lv)
    code, body = tb.put("/v1/budget", {"latency_s": HUGE_LATENCY_S, "energy_j": HUGE_ENERGY_J})
    if code in (401, 403):
        raise AttachMismatch(f"the controller at {tb.url} refused the driver's REST write ({code}): pass "
                             "--token-file FILE holding its admin token (a node's token may not set budgets)")
    if code != 200:
        raise AttachMismatch(f"the controller at {tb.url} cannot plan even at an unbounded budget: {code} "
                             f"{body.get('detail') if isinstance(body, dict) else body}")
    problems += plan_problems(body, lv, tb.method)
    problems += rho_floor_problems(tb, lv)
    if problems:
        raise AttachMismatch(
            f"the system attached at {tb.url} is not this sweep's live setting:\n- " + "\n- ".join(problems)
            + "\nStart them as (then run the sweep again):\n" + commands(lv, tb.method, tb.control_address, tb.url))
