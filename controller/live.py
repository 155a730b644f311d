"""The live system: registered nodes, the current plan and its version, and the push of new plans.

A plan is pushed in two phases so no request is ever sent for a version the
server does not serve: first every edge server receives config v and
acknowledges it (it has loaded the part), then the device agents receive it.
Servers keep serving the previous version until its requests have drained.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from controller.drift import DriftGate
from controller.live_problem import build_problem
from controller.planner import Planner
from controller.problem import Answer
from controller.settings import ControllerSettings
from splitbed.errors import FailedPrecondition, NotFound, SplitbedError, Unavailable
from splitbed.metrics import Metrics
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

ROLES: dict[int, str] = {control_pb2.ROLE_DEVICE: "device", control_pb2.ROLE_SERVER: "server"}
PIN_FIELDS = ("split", "rho_device", "rho_server", "power_w", "freq_device_hz", "freq_server_hz")


@dataclass
class Node:
    node_id: str
    role: str
    address: str
    profile: control_pb2.NodeProfile
    registered_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    telemetry: dict[str, float] = field(default_factory=dict)
    telemetry_sources: dict[str, str] = field(default_factory=dict)
    acked_version: int = 0
    applied: dict[str, float] = field(default_factory=dict)
    applied_sources: dict[str, str] = field(default_factory=dict)
    ack_error: str | None = None
    queue: asyncio.Queue[control_pb2.Config] | None = None
    acks: dict[int, asyncio.Event] = field(default_factory=dict)
    profiled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Plan:
    config: control_pb2.Config
    answer: Answer
    status: str = "pending"  # pending -> applied | failed
    created_at: float = field(default_factory=time.time)


def config_from_answer(version: int, answer: Answer, model: str, settings: ControllerSettings,
                       reason: str) -> control_pb2.Config:
    st = answer.stage
    assert answer.split is not None and st is not None
    return control_pb2.Config(
        version=version, model=model, method=settings.method, encoding=settings.encoding or "", reason=reason,
        knobs=control_pb2.Knobs(
            split=answer.split, rho_device=answer.rho_device or 0.0, rho_server=answer.rho_server or 0.0,
            power_w=answer.power_w or 0.0, freq_device_hz=answer.freq_device_hz or 0.0,
            freq_server_hz=answer.freq_server_hz or 0.0,
        ),
        predicted=control_pb2.Prediction(
            t_device_s=st.t_device, t_upload_s=st.t_upload, t_server_s=st.t_server,
            latency_s=answer.latency_s or 0.0, e_device_j=st.e_device, e_upload_j=st.e_upload,
            e_server_j=st.e_server, energy_j=answer.energy_j or 0.0, rate_bps=answer.rate_bps or 0.0,
            log2_distortion_bound=answer.log2_distortion_bound or 0.0,
        ),
    )


class LiveSystem:
    def __init__(self, settings: ControllerSettings, planner: Planner | None = None) -> None:
        self.settings = settings
        self.planner = planner or Planner()
        # cvxpy problems are cached and mutated per solve: one solver thread serialises them.
        self.solver_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="solver")
        self.nodes: dict[str, Node] = {}
        self.plan: Plan | None = None
        self.history: list[dict[str, Any]] = []
        self.version = 0
        self.budget = (settings.latency_budget_s, settings.energy_budget_j)
        self.pins: dict[str, float] = {}
        self._replan_lock = asyncio.Lock()
        self.last_answer: Answer | None = None
        self.last_error: str | None = None
        self.metrics = Metrics("controller")
        self.drift = DriftGate(settings.drift_threshold, settings.drift_confirm, settings.drift_min_interval_s)

    # -- nodes ---------------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise NotFound(f"node {node_id!r} is not registered") from None

    def by_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == role]

    async def register(self, node_id: str, role: int, profile: control_pb2.NodeProfile, address: str,
                       applied_version: int = 0) -> None:
        if role not in ROLES:
            raise FailedPrecondition(f"unknown role {role}")
        old = self.nodes.get(node_id)
        node = Node(node_id, ROLES[role], address, profile)
        if old is not None:
            node.queue, node.acked_version = old.queue, old.acked_version
        self.nodes[node_id] = node
        node.acked_version = max(node.acked_version, applied_version)
        self.version = max(self.version, applied_version)
        logger.info("registered %s %s (%s, %d splits)", node.role, node_id, profile.model, len(profile.splits))

    def subscribe(self, node_id: str, known_version: int) -> asyncio.Queue[control_pb2.Config]:
        node = self.node(node_id)
        node.queue = asyncio.Queue()
        plan = self.plan
        # A device must not get a plan its server has not applied yet.
        if plan is not None and plan.config.version > known_version and (node.role == "server" or
                                                                          plan.status == "applied"):
            node.queue.put_nowait(plan.config)
        return node.queue

    def unsubscribe(self, node_id: str, queue: asyncio.Queue[control_pb2.Config]) -> None:
        node = self.nodes.get(node_id)
        if node is not None and node.queue is queue:
            node.queue = None

    def ack(self, req: control_pb2.AckRequest) -> None:
        node = self.node(req.node_id)
        node.last_seen = time.time()
        if req.ok:
            node.acked_version = max(node.acked_version, req.version)
            node.applied = {f: getattr(req.applied, f) for f in PIN_FIELDS}
            node.applied_sources = dict(req.sources)
            node.ack_error = None
        else:
            node.ack_error = f"version {req.version}: {req.error}"
            logger.warning("%s failed to apply version %d: %s", req.node_id, req.version, req.error)
        event = node.acks.setdefault(req.version, asyncio.Event())
        event.set()

    async def telemetry(self, report: control_pb2.TelemetryReport) -> None:
        node = self.node(report.node_id)
        node.last_seen = time.time()
        node.telemetry.update(report.values)
        node.telemetry_sources.update(report.sources)
        if report.HasField("profile"):
            node.profile = report.profile
            node.profiled.set()
        gain = report.values.get("gain")
        if gain and node.role == "device" and self.plan is not None:
            planned = node.profile.link.gain
            adopted = self.drift.check(node.node_id, planned, gain, report_version=report.config_version,
                                       plan_version=self.plan.config.version)
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
                        pins: dict[str, float] | None = None) -> Any:
        devices, servers = self.by_role("device"), self.by_role("server")
        if not devices or not servers:
            raise FailedPrecondition("planning needs a registered device agent and an edge server")
        t0, e0 = self.budget
        return build_problem(
            devices[0].profile, servers[0].profile, self.settings,
            latency_s=latency_s or t0, energy_j=energy_j or e0, pins=self.pins if pins is None else pins,
        )

    async def solve_live(self, latency_s: float | None = None, energy_j: float | None = None,
                         pins: dict[str, float] | None = None) -> Answer:
        problem = self.current_problem(latency_s, energy_j, pins)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.solver_pool,
            lambda: self.planner.solve(problem, solver=self.settings.solver, scheme=self.settings.scheme),
        )

    async def replan(self, reason: str, *, latency_s: float | None = None, energy_j: float | None = None,
                     pins: dict[str, float] | None = None) -> tuple[Answer, Plan | None]:
        """Solve for the live system; if optimal, adopt the budget/pins, version the plan and push it."""
        async with self._replan_lock:
            answer = await self.solve_live(latency_s, energy_j, pins)
            self.last_answer = answer
            if answer.status != "optimal":
                self.last_error = f"no plan ({reason}): {answer.status} {answer.message or ''}".strip()
                logger.warning("%s", self.last_error)
                return answer, None
            self.last_error = None
            if latency_s or energy_j:
                self.budget = (latency_s or self.budget[0], energy_j or self.budget[1])
            if pins is not None:
                self.pins = dict(pins)
            self.version += 1
            model = self.by_role("device")[0].profile.model
            plan = Plan(config_from_answer(self.version, answer, model, self.settings, reason), answer)
            self.plan = plan
            self.metrics.stage_seconds.labels("controller", "solve").observe(answer.solve_time_s)
            self.metrics.applied(plan.config.version, {f: getattr(plan.config.knobs, f) for f in PIN_FIELDS})
            await self._push(plan)
            self.history.append({"version": plan.config.version, "reason": reason, "status": plan.status,
                                 "budget": {"latency_s": self.budget[0], "energy_j": self.budget[1]},
                                 "at": plan.created_at})
            return answer, plan

    async def _push(self, plan: Plan) -> None:
        version = plan.config.version
        servers = self.by_role("server")
        events = []
        for node in servers:
            events.append(node.acks.setdefault(version, asyncio.Event()))
            if node.queue is not None:
                node.queue.put_nowait(plan.config)
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), self.settings.ack_timeout_s)
        except asyncio.TimeoutError:  # wait_for's; not the builtin TimeoutError on 3.10
            plan.status = "failed"
            raise Unavailable(
                f"edge server did not apply version {version} within {self.settings.ack_timeout_s:.0f} s"
            ) from None
        failed = [n.node_id for n in servers if n.acked_version < version]
        if failed:
            plan.status = "failed"
            raise FailedPrecondition(f"version {version} not applied by {failed}: "
                                     f"{[self.nodes[f].ack_error for f in failed]}")
        plan.status = "applied"
        for node in self.by_role("device"):
            if node.queue is not None:
                node.queue.put_nowait(plan.config)
        logger.info("plan version %d pushed (%s)", version, plan.config.reason)
