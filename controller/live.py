"""The live system: registered nodes, the current plan and its version, budget and pins, kept durably.

A re-plan is one transaction: the plan, the budget and the pins it was made
under are adopted together once the push succeeded, or not at all. The
version counter only grows (a failed push burns its number, so a server that
did load it never mistakes the next plan for one it has), and every change is
written to the state file before it is reported.
"""

from __future__ import annotations

import asyncio
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from controller.drift import DriftGate
from controller.live_group import new_budgets, replan_group
from controller.live_problem import problem_dict
from controller.multi_planner import MultiPlanner
from controller.multi_problem import MultiAnswer
from controller.planner import Planner
from controller.problem import Answer, Problem
from controller.push import PIN_FIELDS, Plan, config_from_answer, push_plan
from controller.registry import ROLES, Node, NodeRegistry
from controller.settings import ControllerSettings
from controller.state import StateStore
from splitbed.errors import FailedPrecondition, InvalidArgument, SplitbedError, Unavailable
from splitbed.metrics import Metrics
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

__all__ = ["PIN_FIELDS", "ROLES", "LiveSystem", "Node", "Plan", "validation_message"]


def validation_message(exc: ValidationError) -> str:
    """One line per bad field, each naming the field (the same text REST returns as 422 detail)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _finite(values: dict[str, float]) -> dict[str, float]:
    """What a node reports, without NaN/inf (they could not be shown as JSON, nor planned with)."""
    return {k: v for k, v in values.items() if math.isfinite(v)}


class LiveSystem:
    def __init__(self, settings: ControllerSettings, planner: Planner | None = None,
                 store: StateStore | None = None) -> None:
        self.settings = settings
        self.planner = planner or Planner()
        # cvxpy problems are cached and mutated per solve: one solver thread serialises them.
        self.solver_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="solver")
        self.store = store or StateStore(settings.state)
        self.registry = NodeRegistry(self.store, ttl_s=settings.node_ttl_s, max_nodes=settings.max_nodes)
        self.nodes = self.registry.nodes
        self.plan: Plan | None = None
        self.history: list[dict[str, Any]] = []
        self.version = 0
        self.budget = (settings.latency_budget_s, settings.energy_budget_j)
        self.pins: dict[str, float] = {}
        # Per-device plans (several live devices): device id -> plan, budgets set per device, and whose
        # devices the current plans cover (None after a restart: not known).
        self.multi_planner = MultiPlanner(self.planner)
        self.device_plans: dict[str, Plan] = {}
        self.device_budgets: dict[str, tuple[float, float]] = {}
        self.planned_devices: set[str] | None = None
        self.group_server: str | None = None
        self.last_group_answer: MultiAnswer | None = None
        self._replan_lock = asyncio.Lock()
        self.last_answer: Answer | None = None
        self.last_error: str | None = None
        self.metrics = Metrics("controller")
        self.drift = DriftGate(settings.drift_threshold, settings.drift_confirm, settings.drift_min_interval_s)
        self._restore()

    def _restore(self) -> None:
        snap = self.store.load()
        self.version = snap.version
        self.budget = snap.budget or self.budget
        self.pins = snap.pins
        self.history = snap.history
        self.registry.restore(snap.nodes)
        if snap.plan is not None:
            config, answer, status, at = snap.plan
            self.plan = Plan(config, answer, status, at)
            self.metrics.applied(config.version, {f: getattr(config.knobs, f) for f in PIN_FIELDS})
        if snap.version:
            logger.info("state %s: version %d, %d nodes, budget %s, pins %s", self.store.path, snap.version,
                        len(snap.nodes), self.budget, self.pins)

    # -- nodes ---------------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        return self.registry.get(node_id)

    def by_role(self, role: str) -> list[Node]:
        """Nodes of a role that planning uses (stale ones are left out)."""
        return self.registry.live(role)

    async def register(self, node_id: str, role: int, profile: control_pb2.NodeProfile, address: str,
                       applied_version: int = 0) -> bool:
        """Register (or re-attach) a node; True when an already known node's profile changed."""
        known = node_id in self.nodes
        _node, changed = self.registry.register(node_id, role, profile, address, applied_version)
        self.version = max(self.version, applied_version)
        return known and changed

    def delete_node(self, node_id: str) -> Node:
        node = self.registry.delete(node_id)
        if node.queue is not None:
            node.queue.put_nowait(control_pb2.Config(reason="deregistered"))  # ends its WatchConfig stream
        logger.info("node %s deleted", node_id)
        self.device_budgets.pop(node_id, None)
        if self.ready() and self.group_changed():
            asyncio.get_running_loop().create_task(self.replan_quietly(f"{node_id} left"))
        return node

    def group_changed(self) -> bool:
        """True when the live devices are not those the current plans were made for."""
        ids = {n.node_id for n in self.by_role("device")}
        if self.planned_devices is None:  # restored: one device keeps its restored plan
            return len(ids) > 1 and set(self.device_plans) != ids
        return ids != self.planned_devices

    def subscribe(self, node_id: str, known_version: int) -> asyncio.Queue[control_pb2.Config]:
        node = self.node(node_id)
        node.queue = asyncio.Queue()
        self.registry.seen(node)
        if self.device_plans:
            for p in sorted(self.device_plans.values(), key=lambda p: p.config.version):
                if p.config.version > known_version and (node.role == "server" or (
                        p.config.device_id == node_id and p.status == "applied")):
                    node.queue.put_nowait(p.config)
            return node.queue
        plan = self.plan
        # A device must not get a plan its server has not applied yet.
        # (After a restart the restored plan may be one device's own: never hand it to another device.)
        if plan is not None and plan.config.version > known_version and (node.role == "server" or (
                plan.status == "applied" and plan.config.device_id in ("", node_id))):
            node.queue.put_nowait(plan.config)
        return node.queue

    def unsubscribe(self, node_id: str, queue: asyncio.Queue[control_pb2.Config]) -> None:
        node = self.nodes.get(node_id)
        if node is not None and node.queue is queue:
            node.queue = None
            self.registry.seen(node)  # its TTL counts from the moment it went away

    def ack(self, req: control_pb2.AckRequest) -> None:
        node = self.node(req.node_id)
        if req.ok:
            node.acked_version = max(node.acked_version, req.version)
            node.applied = _finite({f: getattr(req.applied, f) for f in PIN_FIELDS})
            node.applied_sources = dict(list(req.sources.items())[:32])
            node.ack_error = None
        else:
            node.ack_error = f"version {req.version}: {req.error[:500]}"
            logger.warning("%s failed to apply version %d: %s", req.node_id, req.version, req.error[:500])
        self.registry.seen(node)
        event = node.acks.get(req.version)
        if event is not None:
            event.set()

    async def telemetry(self, report: control_pb2.TelemetryReport) -> None:
        node = self.node(report.node_id)
        if len(node.telemetry) + len(report.values) > 256:
            node.telemetry.clear()  # bounded: a node cannot grow the controller without limit
            node.telemetry_sources.clear()
        node.telemetry.update(_finite({k[:64]: v for k, v in report.values.items()}))
        node.telemetry_sources.update({k: v[:200] for k, v in report.sources.items()})
        self.registry.seen(node)
        if report.HasField("profile"):
            node.profile = report.profile
            node.profiled.set()
            self.store.save_node(node.stored())
        gain = report.values.get("gain")
        if gain and node.role == "device" and self.plan is not None:
            planned = node.profile.link.gain
            adopted = None
            # In a group each device has its own plan version: compare against that one, not the newest.
            own = self.device_plans.get(node.node_id, self.plan)
            if 0 < gain <= 1 and planned > 0:
                adopted = self.drift.check(node.node_id, planned, gain, report_version=report.config_version,
                                           plan_version=own.config.version)
            if adopted is not None:
                logger.info("channel gain drifted %.3g -> %.3g: re-planning", planned, adopted)
                node.profile.link.gain = adopted
                asyncio.get_running_loop().create_task(self.replan_quietly("channel drift"))

    async def replan_quietly(self, reason: str) -> None:
        try:
            await self.replan(reason)
        except SplitbedError as exc:
            self.last_error = f"re-plan ({reason}) failed: {type(exc).__name__}: {exc}"
            logger.error("%s", self.last_error)
        except Exception as exc:
            self.last_error = f"re-plan ({reason}) failed: {type(exc).__name__}: {exc}"
            logger.exception("re-plan (%s) failed", reason)

    async def request_profile(self, node_id: str, timeout_s: float = 60.0) -> Node:
        """Ask a node to re-measure its profile and wait until it has sent it."""
        node = self.node(node_id)
        if node.queue is None:
            raise Unavailable(f"node {node_id!r} is not watching configs (disconnected)")
        node.profiled.clear()
        node.queue.put_nowait(control_pb2.Config(reprofile=True, reason="profile requested"))
        try:
            await asyncio.wait_for(node.profiled.wait(), timeout_s)
        except asyncio.TimeoutError:  # wait_for's; not the builtin TimeoutError on 3.10
            raise Unavailable(f"node {node_id!r} sent no profile within {timeout_s:.0f} s") from None
        return node

    # -- planning ------------------------------------------------------------------------
    def ready(self) -> bool:
        return bool(self.by_role("device")) and bool(self.by_role("server"))

    def current_problem(self, latency_s: float | None = None, energy_j: float | None = None,
                        pins: dict[str, float] | None = None) -> Problem:
        """The live problem; bad pins are InvalidArgument naming the pin, bad profiles FailedPrecondition."""
        devices, servers = self.by_role("device"), self.by_role("server")
        if not devices or not servers:
            raise FailedPrecondition("planning needs a registered device agent and an edge server (not stale)")
        t0, e0 = self.budget
        args = (devices[0].profile, servers[0].profile, self.settings)
        try:
            Problem.model_validate(problem_dict(*args, latency_s=latency_s or t0, energy_j=energy_j or e0))
        except ValidationError as exc:
            raise FailedPrecondition(f"the nodes' profiles do not make a valid problem: "
                                     f"{validation_message(exc)}") from None
        try:
            return Problem.model_validate(problem_dict(*args, latency_s=latency_s or t0, energy_j=energy_j or e0,
                                                       pins=self.pins if pins is None else pins))
        except ValidationError as exc:
            raise InvalidArgument(f"pins do not fit the live system: {validation_message(exc)}") from None

    async def solve_live(self, latency_s: float | None = None, energy_j: float | None = None,
                         pins: dict[str, float] | None = None) -> Answer:
        problem = self.current_problem(latency_s, energy_j, pins)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self.solver_pool,
                lambda: self.planner.solve(problem, solver=self.settings.solver, scheme=self.settings.scheme),
            )
        except (ArithmeticError, ValueError) as exc:  # each value in range, together beyond the solver's numbers
            logger.warning("live solve failed on its numbers: %s", exc)
            raise InvalidArgument(f"budget/pins {problem.budget.model_dump()} {problem.pins.model_dump()} are "
                                  f"numerically out of range for the solver: {exc}") from None

    async def replan(self, reason: str, *, latency_s: float | None = None, energy_j: float | None = None,
                     pins: dict[str, float] | None = None,
                     device_id: str | None = None) -> tuple[Answer | MultiAnswer, Plan | None]:
        """Solve for the live system; if optimal, push it, and only then adopt plan, budget and pins.

        Several live devices are planned jointly, one plan each (`controller.live_group`)."""
        async with self._replan_lock:
            if device_id is not None and self.node(device_id).role != "device":
                raise InvalidArgument(f"node {device_id!r} is not a device agent")
            all_budget, budgets = new_budgets(self.budget, self.device_budgets, latency_s, energy_j, device_id)
            new_pins = dict(self.pins if pins is None else pins)
            devices = self.by_role("device")
            if len(devices) > 1 and self.by_role("server"):
                return await replan_group(self, reason, all_budget, budgets, new_pins)
            budget = budgets.get(devices[0].node_id, all_budget) if devices else all_budget
            answer = await self.solve_live(*budget, new_pins)
            self.last_answer = answer
            if answer.status != "optimal":
                self.last_error = f"no plan ({reason}): {answer.status} {answer.message or ''}".strip()
                logger.warning("%s", self.last_error)
                return answer, None
            self.version += 1
            self.store.save_version(self.version)
            model = self.by_role("device")[0].profile.model
            plan = Plan(config_from_answer(self.version, answer, model, self.settings, reason), answer)
            try:
                await push_plan(plan, self.by_role("server"), self.by_role("device"), self.settings.ack_timeout_s)
            except SplitbedError as exc:
                self.last_error = f"version {plan.config.version} ({reason}) not adopted: {exc}"
                self.record_plan(plan, reason, budget, new_pins)
                raise
            self.budget, self.pins, self.plan, self.last_error = all_budget, new_pins, plan, None
            self.device_budgets, self.device_plans = budgets, {}
            self.planned_devices = {n.node_id for n in self.by_role("device")}
            self.record_plan(plan, reason, budget, new_pins)
            self.metrics.stage_seconds.labels("controller", "solve").observe(answer.solve_time_s)
            self.metrics.applied(plan.config.version, {f: getattr(plan.config.knobs, f) for f in PIN_FIELDS})
            return answer, plan

    def record_plan(self, plan: Plan, reason: str, budget: tuple[float, float], pins: dict[str, float]) -> None:
        at = self.store.record_plan(version=plan.config.version, reason=reason, status=plan.status, budget=budget,
                                    pins=pins, config=plan.config, answer=plan.answer)
        entry: dict[str, Any] = {"version": plan.config.version, "reason": reason, "status": plan.status,
                                 "budget": {"latency_s": budget[0], "energy_j": budget[1]}, "pins": pins, "at": at}
        if plan.dropped:
            entry["dropped"] = plan.dropped
        self.history.append(entry)
        del self.history[:-1000]

    def close(self) -> None:
        self.solver_pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()
