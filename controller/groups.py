"""The live groups: per edge server, the plan each of its devices runs now, and what it was planned from.

A group is planned as a whole and independently of every other group. It is
out of date ("changed") when its live devices are not those it was planned
for, or the profile of its server or of one of its devices has changed in a
way that plans differently (`registry.planning_key`), or its last push reached
only some of its devices. Only changed groups are re-planned on churn, so a
device joining, leaving or going stale never changes another group's plans or
versions. A group whose server is gone, or that has no live device left, is
dropped (nothing is pushed: there is no one to push to).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from controller.multi_problem import DeviceAnswer, MultiAnswer
from controller.problem import Answer
from controller.push import Plan
from controller.registry import Node, planning_key
from controller.state import StoredGroup

logger = logging.getLogger(__name__)


@dataclass
class Group:
    server: str
    plans: dict[str, Plan]  # device id -> the plan it runs now
    answer: MultiAnswer | None = None  # the joint answer (None: a group of one device, planned as P1)
    keys: dict[str, bytes] = field(default_factory=dict)  # planning keys of the nodes it was planned from
    incomplete: bool = False  # the last push reached only some devices: re-plan at the next chance

    def latest(self) -> Plan:
        return max(self.plans.values(), key=lambda p: p.config.version)


def keys_of(server: Node, devices: list[Node]) -> dict[str, bytes]:
    return {n.node_id: planning_key(n.profile) for n in [server, *devices]}


def changed(groups: dict[str, Group], members: dict[str, list[Node]],
            nodes: dict[str, Node]) -> tuple[list[str], list[str]]:
    """(servers whose group must be re-planned, servers whose group is gone), each in id order."""
    replan = []
    for server, devices in sorted(members.items()):
        group = groups.get(server)
        if (group is None or group.incomplete or set(group.plans) != {d.node_id for d in devices}
                or group.keys != keys_of(nodes[server], devices)):
            replan.append(server)
    return replan, sorted(set(groups) - set(members))


def _answer(answer_json: str) -> Answer:
    # A joint plan's per-device answer has the device's id and rate; a one-device plan's is P1's own.
    if "id" in json.loads(answer_json):
        return DeviceAnswer.model_validate_json(answer_json)
    return Answer.model_validate_json(answer_json)


def restore(stored: list[StoredGroup], nodes: dict[str, Node]) -> dict[str, Group]:
    """The groups of the state file, as far as their nodes are still registered."""
    groups: dict[str, Group] = {}
    for g in stored:
        plans = {d: Plan(p.config, _answer(p.answer_json), p.status, p.at) for d, p in g.plans.items()
                 if p.config is not None and p.answer_json and nodes.get(d) is not None}
        server = nodes.get(g.server)
        if not plans or server is None:
            continue
        answer = MultiAnswer.model_validate_json(g.answer_json) if g.answer_json else None
        devices = [nodes[d] for d in sorted(plans)]
        groups[g.server] = Group(g.server, plans, answer, keys_of(server, devices),
                                 incomplete=g.incomplete or len(plans) != len(g.plans))
        logger.info("restored the group of %s: %s", g.server, {d: p.config.version for d, p in plans.items()})
    return groups
