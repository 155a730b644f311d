"""The live system: registered nodes, the per-server groups and their plans, budget and pins, kept durably.

Each edge server and the live devices that send to it form a group
(`controller.association`), planned as a whole and independently of the
others (`controller.replan`). A group's re-plan is one transaction: its plans,
and the budget and pins they were made under, are adopted together once the
push succeeded, or not at all. The version counter only grows (a failed push
burns its number, so a server that did load it never mistakes the next plan
for one it has), and every change is written to the state file before it is
reported; a restarted controller restores every device's plan and version.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from controller.association import Association, associate, check_server_ref, membership
from controller.drift import DriftGate, rate_drift
from controller.groups import Group, changed, restore
from controller.live_group import new_budgets
from controller.live_problem import validation_message
from controller.multi_planner import MultiPlanner
from controller.multi_problem import MultiAnswer
from controller.planner import Planner
from controller.problem import Answer
from controller.push import PIN_FIELDS, Plan
from controller.push_retry import PushRetry
from controller.registry import ROLES, Node, NodeRegistry
from controller.replan import plan_groups
from controller.settings import ControllerSettings
from controller.state import StateStore
from splitbed.errors import FailedPrecondition, InvalidArgument, SplitbedError, Unavailable
from splitbed.metrics import Metrics
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

__all__ = ["PIN_FIELDS", "ROLES", "LiveSystem", "Node", "Plan", "validation_message"]
NO_GROUP = "planning needs a registered device agent and an edge server (not stale)"


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
        self.plan: Plan | None = None  # the newest plan adopted (of any group)
        self.history: list[dict[str, Any]] = []
        self.version = 0
        self.budget = (settings.latency_budget_s, settings.energy_budget_j)
        self.pins: dict[str, float] = {}
        self.multi_planner = MultiPlanner(self.planner)
        self.groups: dict[str, Group] = {}  # edge server id -> its group's current plans
        self.device_budgets: dict[str, tuple[float, float]] = {}
        self._replan_lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.metrics = Metrics("controller")
        self.push_retry = PushRetry(settings.push_retry_s)
        self.drift = DriftGate(settings.drift_threshold, settings.drift_confirm, settings.drift_min_interval_s)
        self._restore()

    def _restore(self) -> None:
        snap = self.store.load()
        self.version = snap.version
        self.budget = snap.budget or self.budget
        self.pins = snap.pins
        self.history = snap.history
        self.device_budgets = snap.device_budgets
        self.registry.restore(snap.nodes)
        self.groups = restore(snap.groups, self.nodes)
        if self.groups:
            self.plan = max((g.latest() for g in self.groups.values()), key=lambda p: p.config.version)
        elif snap.plan is not None:  # a state file from before per-server groups: its one current plan
            config, answer, status, at = snap.plan
            self.plan = Plan(config, answer, status, at)
        if self.plan is not None:
            self.metrics.applied(self.plan.config.version,
                                 {f: getattr(self.plan.config.knobs, f) for f in PIN_FIELDS})
        if snap.version:
            logger.info("state %s: version %d, %d nodes, %d groups, budget %s, pins %s", self.store.path,
                        snap.version, len(snap.nodes), len(self.groups), self.budget, self.pins)

    def start(self) -> None:
        """Watch for nodes going stale (call once, in the event loop)."""
        self._watch = asyncio.get_running_loop().create_task(self._watch_staleness(), name="stale-watch")

    async def _watch_staleness(self) -> None:
        """A node that goes stale leaves its group: re-plan that group (only when the stale set changed).
        A changed group whose push failed is re-planned again when its retry is due (`PushRetry`)."""
        every = max(0.05, min(1.0, self.settings.node_ttl_s / 4, self.settings.push_retry_s / 2))
        stale = self.registry.stale_ids()
        while True:
            await asyncio.sleep(every)
            now_stale = self.registry.stale_ids()
            newly, stale = now_stale - stale, now_stale
            if newly and self.group_changed():
                await self.replan_quietly(f"{', '.join(sorted(newly))} went stale")
            now = time.monotonic()
            due = self.push_retry.due(now, self.changed_groups()[0]) if self.push_retry.pending() else []
            if due:
                for sid in due:  # the next try's wait doubles whatever this one's end
                    self.push_retry.failed(sid, now)
                await self.replan_quietly(f"retrying the push to the group of {', '.join(due)}")

    # -- nodes ---------------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        return self.registry.get(node_id)

    def by_role(self, role: str) -> list[Node]:
        """Nodes of a role that planning uses (stale ones are left out)."""
        return self.registry.live(role)

    async def register(self, node_id: str, role: int, profile: control_pb2.NodeProfile, address: str,
                       applied_version: int = 0) -> bool:
        """Register (or re-attach) a node; True when an already known node's profile changed."""
        check_server_ref(profile)
        known = node_id in self.nodes
        _node, was_changed = self.registry.register(node_id, role, profile, address, applied_version)
        self.version = max(self.version, applied_version)
        return known and was_changed

    def delete_node(self, node_id: str) -> Node:
        node = self.registry.delete(node_id)
        if node.queue is not None:
            node.queue.put_nowait(control_pb2.Config(reason="deregistered"))  # ends its WatchConfig stream
        logger.info("node %s deleted", node_id)
        if self.device_budgets.pop(node_id, None) is not None:
            self.store.save_device_budgets(self.device_budgets)
        if self.group_changed():
            asyncio.get_running_loop().create_task(self.replan_quietly(f"{node_id} left"))
        return node

    # -- groups --------------------------------------------------------------------------
    def members(self) -> dict[str, list[Node]]:
        """Live devices by the live edge server whose group they are in."""
        return membership(self.by_role("device"), self.by_role("server"), self._servers())

    def _servers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "server"]

    def association(self, device: Node) -> Association:
        return associate(device, self.by_role("server"), self._servers())

    def changed_groups(self) -> tuple[list[str], list[str]]:
        """(groups to re-plan, groups gone): see `controller.groups.changed`."""
        return changed(self.groups, self.members(), self.nodes)

    def group_changed(self) -> bool:
        """True when some group's live devices or profiles are not those its plans were made for."""
        replan, gone = self.changed_groups()
        return bool(replan or gone)

    def unassigned(self) -> dict[str, str]:
        """Live devices in no group, and why."""
        out = {}
        for d in self.by_role("device"):
            link = self.association(d)
            if link.server is None:
                out[d.node_id] = link.why
        return out

    def plan_of(self, device_id: str) -> Plan | None:
        for group in self.groups.values():
            if device_id in group.plans:
                return group.plans[device_id]
        return None

    def group_of(self, device_id: str) -> str | None:
        return next((s for s, g in self.groups.items() if device_id in g.plans), None)

    @property
    def device_plans(self) -> dict[str, Plan]:
        """Every device's current plan, across the groups."""
        return {d: p for g in self.groups.values() for d, p in g.plans.items()}

    def subscribe(self, node_id: str, known_version: int) -> asyncio.Queue[control_pb2.Config]:
        node = self.node(node_id)
        node.queue = asyncio.Queue()
        self.registry.seen(node)
        if node.role == "server":  # every plan of its own group
            group = self.groups.get(node_id)
            plans = list(group.plans.values()) if group else []
        else:  # its own plan, once its server has applied it
            own = self.plan_of(node_id)
            plans = [own] if own is not None and own.status == "applied" else []
        legacy = self.plan  # restored from a state file without groups: one plan for every node
        if not self.groups and legacy is not None and legacy.config.device_id in ("", node_id) and (
                node.role == "server" or legacy.status == "applied"):
            plans = [legacy]
        for p in sorted(plans, key=lambda p: p.config.version):
            if p.config.version > known_version:
                node.queue.put_nowait(p.config)
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
            check_server_ref(report.profile)
            node.profile = report.profile
            node.profiled.set()
            self.store.save_node(node.stored())
        fixed = report.values.get("fixed_latency_s")
        if fixed is not None and node.role == "device" and 0.0 <= fixed <= 10.0:  # T_fix: the next plan uses it
            before = node.profile.fixed_latency_s
            node.profile.fixed_latency_s = fixed
            node.profile.fixed_latency_source = report.sources.get("fixed_latency_s", "measured: telemetry")[:200]
            if abs(fixed - before) > 0.02 * max(before, 1e-4):  # kept across a restart; not every tiny wobble
                self.store.save_node(node.stored())
        gain = report.values.get("gain")
        own = self.plan_of(node.node_id)
        if gain and node.role == "device" and own is not None:
            planned = node.profile.link.gain
            # In a group each device has its own plan version: compare against that one, not the newest.
            adopted = rate_drift(self.drift, node.node_id, node.profile.link, own.config.knobs.power_w, gain,
                                 report_version=report.config_version, plan_version=own.config.version)
            if adopted is not None:
                logger.info("channel gain drifted %.3g -> %.3g: re-planning", planned, adopted)
                node.profile.link.gain = adopted
                self.store.save_node(node.stored())
                asyncio.get_running_loop().create_task(self.replan_quietly("channel drift"))

    async def replan_quietly(self, reason: str) -> None:
        """Re-plan the groups that changed (each on its own), drop those that are gone; errors are logged."""
        try:
            await self.replan_changed(reason)
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

    async def replan_changed(self, reason: str) -> None:
        async with self._replan_lock:
            members = self.members()
            replan, gone = changed(self.groups, members, self.nodes)
            for sid in gone:
                logger.info("group of %s dropped (%s): %s", sid, reason, sorted(self.groups[sid].plans))
                del self.groups[sid]
                self.store.drop_group(sid)
            if replan:
                await plan_groups(self, reason, replan, members, self.budget, self.device_budgets, self.pins,
                                  all_or_nothing=False)

    async def replan(self, reason: str, *, latency_s: float | None = None, energy_j: float | None = None,
                     pins: dict[str, float] | None = None,
                     device_id: str | None = None) -> tuple[Answer | MultiAnswer, Plan | None]:
        """Solve, push and adopt: the group of `device_id`, or every group (all of them planned, or none).

        Returns the (last) answer and the newest plan adopted, None when none was."""
        async with self._replan_lock:
            members = self.members()
            servers = sorted(members)
            if device_id is not None:
                node = self.node(device_id)
                if node.role != "device":
                    raise InvalidArgument(f"node {device_id!r} is not a device agent")
                link = self.association(node)
                if link.server is None or node.stale(self.settings.node_ttl_s):
                    raise FailedPrecondition(f"device {device_id!r} is in no group: "
                                             f"{link.why or 'it is stale'}")
                servers = [link.server]
            if not servers:
                waiting = "; ".join(f"{d}: {why}" for d, why in sorted(self.unassigned().items()))
                raise FailedPrecondition(NO_GROUP + (f" ({waiting})" if waiting else ""))
            all_budget, budgets = new_budgets(self.budget, self.device_budgets, latency_s, energy_j, device_id)
            new_pins = dict(self.pins if pins is None else pins)
            answer, plan = await plan_groups(self, reason, servers, members, all_budget, budgets, new_pins,
                                             all_or_nothing=True)
            assert answer is not None  # all or nothing: an error was raised otherwise
            return answer, plan

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self.solver_pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()
