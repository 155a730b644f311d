"""Re-planning groups: solve each edge server's group, push each device its plan, adopt what was applied.

Groups are independent: each is solved from its own server's and devices'
profiles, pushed to its own server and devices only, and takes its versions
from the one increasing counter, so re-planning one group leaves every other
group's plans and versions as they are. A group of one device is planned as
P1 (the controller's solver and scheme settings); a larger one jointly
(`controller.live_group`).

A change that applies to every group (the budget of every device, the pins, a
re-plan asked for by hand) is all or nothing at the solve: if any group has no
plan, none is pushed. Churn (a device joining, leaving, going stale, a profile
or channel change) re-plans only the groups it changed, each on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pydantic import ValidationError

from controller.groups import Group, keys_of
from controller.live_group import group_plans, group_problem, push_group, solve_group
from controller.live_problem import build_problem, validation_message
from controller.multi_problem import MultiAnswer
from controller.problem import Answer, Problem
from controller.push import PIN_FIELDS, Plan, config_from_answer
from controller.registry import Node
from controller.state import StoredPlan
from splitbed.errors import FailedPrecondition, InvalidArgument, SplitbedError

logger = logging.getLogger(__name__)

Budget = tuple[float, float]
Solved = Answer | MultiAnswer


def _one_device_problem(live: Any, device: Node, server: Node, budget: Budget, pins: dict[str, float]) -> Problem:
    """P1 of one device and its server; bad pins are InvalidArgument naming the pin, bad profiles
    FailedPrecondition."""
    def validate(with_pins: dict[str, float]) -> Problem:
        return build_problem(device.profile, server.profile, live.settings, latency_s=budget[0],
                             energy_j=budget[1], pins=with_pins)
    try:
        validate({})
    except ValidationError as exc:
        raise FailedPrecondition(f"the profiles of {device.node_id} and {server.node_id} do not make a valid "
                                 f"problem: {validation_message(exc)}") from None
    try:
        return validate(pins)
    except ValidationError as exc:
        raise InvalidArgument(f"pins do not fit the live system: {validation_message(exc)}") from None


async def solve(live: Any, server: Node, devices: list[Node], budget: Budget, budgets: dict[str, Budget],
                pins: dict[str, float]) -> Solved:
    """The plan of one group (not pushed)."""
    loop = asyncio.get_running_loop()
    if len(devices) == 1:
        d = devices[0]
        problem = _one_device_problem(live, d, server, budgets.get(d.node_id, budget), pins)
        try:
            return await loop.run_in_executor(live.solver_pool, lambda: live.planner.solve(
                problem, solver=live.settings.solver, scheme=live.settings.scheme))
        except (ArithmeticError, ValueError) as exc:  # each value in range, together beyond the solver's numbers
            logger.warning("live solve failed on its numbers: %s", exc)
            raise InvalidArgument(f"budget/pins {problem.budget.model_dump()} {problem.pins.model_dump()} are "
                                  f"numerically out of range for the solver: {exc}") from None
    joint = group_problem(devices, server, live.settings, budgets, budget, pins)
    return await loop.run_in_executor(live.solver_pool, solve_group, live.multi_planner, joint)


def _plans(answer: Solved, first: int, devices: list[Node], live: Any, reason: str) -> dict[str, Plan]:
    model = devices[0].profile.model
    if isinstance(answer, MultiAnswer):
        return group_plans(answer, first, model, live.settings, reason)
    config = config_from_answer(first, answer, model, live.settings, reason)
    config.device_id = devices[0].node_id
    return {devices[0].node_id: Plan(config, answer)}


def _row(plan: Plan, reason: str, budget: Budget, pins: dict[str, float]) -> StoredPlan:
    return StoredPlan(plan.config.version, reason, plan.status, budget, pins, plan.config,
                      plan.answer.model_dump_json())


def _remember(live: Any, plans: dict[str, Plan], reason: str, budget: Budget, budgets: dict[str, Budget],
              pins: dict[str, float], server: str, at: float) -> None:
    for dev, plan in sorted(plans.items(), key=lambda kv: kv[1].config.version):
        b = budgets.get(dev, budget)
        entry: dict[str, Any] = {"version": plan.config.version, "reason": reason, "status": plan.status,
                                 "budget": {"latency_s": b[0], "energy_j": b[1]}, "pins": pins, "at": at,
                                 "device_id": dev, "server": server}
        if plan.dropped:
            entry["dropped"] = plan.dropped
        live.history.append(entry)
    del live.history[:-1000]


def _keep_what_was_applied(live: Any, server: Node, devices: list[Node], plans: dict[str, Plan],
                           rows: list[StoredPlan], exc: SplitbedError, reason: str) -> float:
    """After a push that failed part-way: the devices that got their new plan keep it, the group is marked
    for a re-plan, and budget and pins stay as they were. The time it was recorded."""
    sid = server.node_id
    applied = {d: p for d, p in plans.items() if p.status == "applied"}
    live.last_error = (f"group of {sid}: versions {sorted(p.config.version for p in plans.values())} ({reason}) "
                       f"not adopted{' whole' if applied else ''}: {exc}")
    group = live.groups.get(sid)
    if applied and group is not None:  # what the devices run now, re-planned at the next chance
        group.plans.update(applied)
        group.incomplete = True
    elif applied:
        group = live.groups[sid] = Group(sid, applied, None, keys_of(server, devices), incomplete=True)
    current = {d: p.config.version for d, p in group.plans.items()} if group else {}
    answer = group.answer.model_dump_json() if group and group.answer else None
    return float(live.store.record_group(sid, rows, current, answer, incomplete=bool(group and group.incomplete),
                                         settings=None))


async def _push_and_adopt(live: Any, reason: str, server: Node, devices: list[Node], answer: Solved,
                          budget: Budget, budgets: dict[str, Budget], pins: dict[str, float]) -> Plan:
    sid = server.node_id
    first = live.version + 1
    live.version += len(devices)
    live.store.save_version(live.version)
    plans = _plans(answer, first, devices, live, reason)
    before = live.groups.get(sid)
    old = {d: p for d, p in (before.plans if before else {}).items() if d in plans}
    try:
        await push_group(plans, old, server, {n.node_id: n for n in devices}, live.settings.ack_timeout_s)
    except SplitbedError as exc:
        for p in plans.values():
            p.status = "failed" if p.status == "pending" else p.status
        rows = [_row(p, reason, budgets.get(d, budget), pins) for d, p in plans.items()]
        at = _keep_what_was_applied(live, server, devices, plans, rows, exc, reason)
        _remember(live, plans, reason, budget, budgets, pins, sid, at)
        raise
    rows = [_row(p, reason, budgets.get(d, budget), pins) for d, p in plans.items()]
    group = Group(sid, plans, answer if isinstance(answer, MultiAnswer) else None, keys_of(server, devices))
    live.groups[sid] = group
    live.budget, live.device_budgets, live.pins, live.last_error = budget, budgets, pins, None
    at = live.store.record_group(sid, rows, {d: p.config.version for d, p in plans.items()},
                                 group.answer.model_dump_json() if group.answer else None, incomplete=False,
                                 settings=(budget, pins, budgets))
    _remember(live, plans, reason, budget, budgets, pins, sid, at)
    latest = group.latest()
    if live.plan is None or latest.config.version > live.plan.config.version:
        live.plan = latest
    live.metrics.stage_seconds.labels("controller", "solve").observe(answer.solve_time_s)
    live.metrics.applied(latest.config.version, {f: getattr(latest.config.knobs, f) for f in PIN_FIELDS})
    return latest


def _refused(live: Any, server: str, reason: str, answer: Solved) -> None:
    live.last_error = f"no plan for the group of {server} ({reason}): {answer.status} {answer.message or ''}".strip()
    logger.warning("%s", live.last_error)


async def plan_groups(live: Any, reason: str, servers: list[str], members: dict[str, list[Node]], budget: Budget,
                      budgets: dict[str, Budget], pins: dict[str, float], *,
                      all_or_nothing: bool) -> tuple[Solved | None, Plan | None]:
    """Plan the groups of `servers` (each in `members`); the last answer and the newest plan adopted (None:
    nothing adopted). `live` is the `controller.live.LiveSystem`, its re-plan lock held by the caller."""
    solved: list[tuple[str, Solved]] = []
    last: Solved | None = None
    for sid in servers:
        try:
            answer = await solve(live, live.node(sid), members[sid], budget, budgets, pins)
        except SplitbedError as exc:
            if all_or_nothing:
                raise
            live.last_error = f"no plan for the group of {sid} ({reason}): {type(exc).__name__}: {exc}"
            logger.error("%s", live.last_error)
            continue
        last = answer
        if answer.status != "optimal":
            _refused(live, sid, reason, answer)
            if all_or_nothing:
                return answer, None
            continue
        solved.append((sid, answer))
    newest: Plan | None = None
    for sid, answer in solved:
        try:
            plan = await _push_and_adopt(live, reason, live.node(sid), members[sid], answer, budget, budgets, pins)
        except SplitbedError:
            group = live.groups.get(sid)
            # A churn re-plan, or devices left on a mix of old and new plans: the watcher tries again.
            if (not all_or_nothing or (group is not None and group.incomplete)) and \
                    sid not in live.push_retry.pending():  # a retry that failed was already rescheduled
                wait = live.push_retry.failed(sid, time.monotonic())
                live.last_error = f"{live.last_error}; retrying in {wait:g} s"
            if all_or_nothing:
                raise
            logger.error("%s", live.last_error)  # that group only: the others are pushed all the same
            continue
        live.push_retry.succeeded(sid)
        newest = plan if newest is None or plan.config.version > newest.config.version else newest
    return (solved[-1][1] if solved else last), newest
