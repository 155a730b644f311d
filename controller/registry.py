"""The registered nodes: bounded in number, expiring when silent, persisted with their last profile."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from controller.auth import check_node_id
from controller.state import StateStore, StoredNode
from splitbed.errors import FailedPrecondition, NotFound, ResourceExhausted
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

ROLES: dict[int, str] = {control_pb2.ROLE_DEVICE: "device", control_pb2.ROLE_SERVER: "server"}


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
    restored_at: float = 0.0  # loaded from the state file at this time: one TTL from then to come back

    def stale(self, ttl_s: float, now: float | None = None) -> bool:
        """Silent too long: no open config stream and no call within the TTL (nor since a restart)."""
        return self.queue is None and (now or time.time()) - max(self.last_seen, self.restored_at) > ttl_s

    def stored(self) -> StoredNode:
        return StoredNode(self.node_id, self.role, self.address, self.profile, self.registered_at, self.last_seen,
                          self.acked_version)


def planning_key(profile: control_pb2.NodeProfile) -> bytes:
    """The profile without its run-to-run measurement noise: equal keys plan the same."""
    p = control_pb2.NodeProfile()
    p.CopyFrom(profile)
    p.compute.achieved_flops_per_s = 0.0
    p.compute.clock_hz = 0.0
    return p.SerializeToString(deterministic=True)


class NodeRegistry:
    def __init__(self, store: StateStore, *, ttl_s: float, max_nodes: int) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.max_nodes = max_nodes
        self.nodes: dict[str, Node] = {}

    def restore(self, stored: list[StoredNode]) -> None:
        # A restarted controller gives every node it knew one TTL to come back before it counts as stale,
        # so a node that reconnects in time never leaves (nor re-plans) its group.
        now = time.time()
        for s in stored[: self.max_nodes]:
            self.nodes[s.node_id] = Node(s.node_id, s.role, s.address, s.profile, s.registered_at, s.last_seen,
                                         acked_version=s.acked_version, restored_at=now)

    def get(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise NotFound(f"node {node_id[:80]!r} is not registered") from None

    def live(self, role: str) -> list[Node]:
        """Nodes of a role that planning may use: not stale, oldest registration first."""
        now = time.time()
        return [n for n in self.nodes.values() if n.role == role and not n.stale(self.ttl_s, now)]

    def stale_ids(self) -> set[str]:
        now = time.time()
        return {n.node_id for n in self.nodes.values() if n.stale(self.ttl_s, now)}

    def seen(self, node: Node) -> None:
        node.last_seen = time.time()
        self.store.touch_node(node.node_id, node.last_seen, node.acked_version)

    def register(self, node_id: str, role: int, profile: control_pb2.NodeProfile, address: str,
                 applied_version: int) -> tuple[Node, bool]:
        """Add or replace a node; (node, whether its planning-relevant profile changed)."""
        check_node_id(node_id)
        if role not in ROLES:
            raise FailedPrecondition(f"unknown role {role}")
        if len(address) > 256:
            raise FailedPrecondition("address longer than 256 characters")
        old = self.nodes.get(node_id)
        if old is None:
            self._make_room()
        node = Node(node_id, ROLES[role], address, profile)
        changed = old is None or old.role != node.role or planning_key(old.profile) != planning_key(profile)
        if old is not None:
            node.queue, node.acked_version, node.registered_at = old.queue, old.acked_version, old.registered_at
        node.acked_version = max(node.acked_version, applied_version)
        self.nodes[node_id] = node
        self.store.save_node(node.stored())
        logger.info("registered %s %s (%s, %d splits%s)", node.role, node_id, profile.model, len(profile.splits),
                    "" if changed else ", profile unchanged")
        return node, changed

    def _make_room(self) -> None:
        if len(self.nodes) < self.max_nodes:
            return
        now = time.time()
        stale = sorted((n for n in self.nodes.values() if n.stale(self.ttl_s, now)), key=lambda n: n.last_seen)
        if not stale:
            raise ResourceExhausted(f"{self.max_nodes} nodes are registered and none is stale (max_nodes)")
        logger.info("max_nodes reached: dropping stale node %s", stale[0].node_id)
        self.delete(stale[0].node_id)

    def delete(self, node_id: str) -> Node:
        node = self.get(node_id)
        del self.nodes[node_id]
        self.store.delete_node(node_id)
        for event in node.acks.values():
            event.set()  # a push waiting on it stops waiting
        return node
