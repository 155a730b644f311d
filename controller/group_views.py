"""How REST shows the per-server groups: each group's plans, and each node's group and association."""

from __future__ import annotations

from typing import Any


def group_view(group: Any, msg: Any) -> dict[str, Any]:
    """A group (`controller.groups.Group`) as REST shows it: its server, shared loads and each device's plan."""
    answer = group.answer
    return {
        "server": group.server,
        "devices": {d: {"version": p.config.version, "status": p.status, "config": msg(p.config),
                        "answer": p.answer.model_dump()} for d, p in sorted(group.plans.items())},
        "server_utilisation": answer.server_utilisation if answer else None,
        "uplink_utilisation": answer.uplink_utilisation if answer else None,
        "u_max": answer.u_max if answer else None,
        "incomplete": group.incomplete,
    }


def node_group(live: Any, n: Any) -> dict[str, Any]:
    """A node's place in the groups (`live` is the `controller.live.LiveSystem`): a server's group and its
    devices; a device's group, plan version and how it was associated with its server."""
    if n.role == "server":
        group = live.groups.get(n.node_id)
        return {"group": n.node_id if group else None, "group_devices": sorted(group.plans) if group else []}
    link = live.association(n)
    plan = live.plan_of(n.node_id)
    return {"group": live.group_of(n.node_id), "plan_version": plan.config.version if plan else None,
            "association": {"server": link.server, "by": link.by, "why": link.why or None,
                            "server_node_id": n.profile.server_node_id or None,
                            "server_address": n.profile.server_address or None}}
