"""Per-device plans: the devices of an edge server planned jointly (the multi-device P1), one plan each.

A group is one edge server and the live devices that send to it
(`controller.association`). Each device enters with its own profile (FLOPs, parameters and
payload per split, clock, link), its own budget and rate 1/T0_k; the server
is shared (Σ λ_k t̃_k ≤ u_max) and so is the uplink airtime. Devices are
taken in id order, so registration order never changes the plan.

The edge server applies one clock at a time (its clock backend is process
wide), so in a group of several devices every part is planned at the server's
f_max: the plan's f̃_k is the clock each part really runs at. Per-request
clock switching is not done.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from controller.live_problem import problem_dict
from controller.multi_planner import MultiPlanner
from controller.multi_problem import MultiAnswer, MultiProblem
from controller.push import Plan, config_from_answer, push_plan
from controller.registry import Node
from controller.settings import ControllerSettings
from splitbed.errors import FailedPrecondition, InvalidArgument

logger = logging.getLogger(__name__)

Budget = tuple[float, float]


def new_budgets(budget: Budget, device_budgets: dict[str, Budget], latency_s: float | None,
                energy_j: float | None, device_id: str | None) -> tuple[Budget, dict[str, Budget]]:
    """The budget of every device and the per-device ones, after a change for one device or for all."""
    budgets = dict(device_budgets)
    if device_id is None:
        if latency_s or energy_j:
            budgets.clear()  # a budget without a device id applies to every device
        return (latency_s or budget[0], energy_j or budget[1]), budgets
    t0, e0 = budgets.get(device_id, budget)
    budgets[device_id] = (latency_s or t0, energy_j or e0)
    return budget, budgets


def _device_spec(node: Node, server: Node, settings: ControllerSettings, budget: Budget,
                 pins: dict[str, float]) -> dict[str, Any]:
    d = problem_dict(node.profile, server.profile, settings, latency_s=budget[0], energy_j=budget[1], pins=pins)
    return {"id": node.node_id, "device": d["device"], "gain": d["link"]["gain"], "p_max_w": d["link"]["p_max_w"],
            "budget": d["budget"], "rho_min_device": d["rho_min_device"], "rho_min_server": d["rho_min_server"],
            "n_layers": d["n_layers"], "splits": d["splits"], "pins": d["pins"],
            "fixed_latency_s": d["fixed_latency_s"]}


def group_problem(devices: list[Node], server: Node, settings: ControllerSettings, budgets: dict[str, Budget],
                  default: Budget, pins: dict[str, float]) -> MultiProblem:
    """The multi-device problem of `server`'s group; bad profiles FailedPrecondition, bad pins InvalidArgument."""
    ordered = sorted(devices, key=lambda n: n.node_id)
    # One server clock for the group (see the module note): pinned at f_max unless pinned by hand.
    common = {"freq_server_hz": server.profile.compute.f_max_hz, **pins}
    specs = [_device_spec(n, server, settings, budgets.get(n.node_id, default), common) for n in ordered]
    links = [n.profile.link for n in ordered]
    data = {"server": problem_dict(ordered[0].profile, server.profile, settings, latency_s=default[0],
                                   energy_j=default[1])["server"],
            "link": {"bandwidth_hz": min(lk.bandwidth_hz for lk in links),
                     "noise_psd_w_per_hz": max(lk.noise_psd_w_per_hz for lk in links)},
            "bits_per_param": settings.bits_per_param, "entropy_bits_per_param": settings.entropy_bits_per_param,
            "devices": specs}
    try:
        return MultiProblem.model_validate(data)
    except ValidationError as exc:
        msg = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors())
        raise InvalidArgument(f"the group of {server.node_id!r} does not make a valid problem: {msg}") from None


def solve_group(planner: MultiPlanner, problem: MultiProblem) -> MultiAnswer:
    try:
        return planner.solve(problem)
    except (ArithmeticError, ValueError) as exc:
        raise InvalidArgument(f"group problem numerically out of range for the solver: {exc}") from None


def group_plans(answer: MultiAnswer, first_version: int, model: str, settings: ControllerSettings,
                reason: str) -> dict[str, Plan]:
    """One plan per device, versions first_version, first_version + 1, ... in device id order, each with its
    period 1/lambda_k and a slot offset: its upload starts once the previous device's upload has ended (TDMA)
    and late enough that it reaches the server when the previous device's part is done there (so it does not
    queue behind it, which the prediction leaves out)."""
    plans: dict[str, Plan] = {}
    upload_free = server_free = 0.0  # when the uplink, and the server, are done with the previous device
    for i, dev in enumerate(sorted(answer.devices, key=lambda d: d.id)):
        config = config_from_answer(first_version + i, dev, model, settings, reason)
        config.device_id = dev.id
        config.period_s = 1.0 / dev.rate_hz
        pred = config.predicted
        upload_at = max(upload_free, server_free - pred.t_upload_s)
        config.slot_offset_s = (upload_at - pred.t_device_s) % config.period_s
        if pred.t_upload_s > 0 or pred.t_server_s > 0:  # L = n uses neither the uplink nor the server
            upload_free = upload_at + pred.t_upload_s
            server_free = upload_free + pred.t_server_s
        plans[dev.id] = Plan(config, dev)
    return plans


async def push_group(plans: dict[str, Plan], old: dict[str, Plan], server: Node, devices: dict[str, Node],
                     ack_timeout_s: float) -> None:
    """Each device's plan to the server, then (once applied) to that device, in version order.

    The server keeps every version some device may still send: the new ones
    pushed so far and the old plans of the group; a device's old version
    retires (once drained) after it has been given its new one.
    """
    if server.queue is None:
        raise FailedPrecondition(f"edge server {server.node_id!r} is not watching configs")
    pushed: list[int] = []
    in_order = sorted(plans.items(), key=lambda kv: kv[1].config.version)
    for i, (dev_id, plan) in enumerate(in_order):
        pushed.append(plan.config.version)
        still_old = [p.config.version for d, p in old.items() if d not in dict(in_order[:i])]
        plan.config.live_versions.extend(sorted(set(pushed + still_old)))
        await push_plan(plan, [server], [devices[dev_id]], ack_timeout_s)
    logger.info("group of %s: per-device plans %s", server.node_id,
                {d: p.config.version for d, p in plans.items()})
