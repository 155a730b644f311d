"""Which edge server a device belongs to: its group, the devices planned jointly with one server.

A device names its server in its profile (`NodeProfile.server_node_id`,
`server_address`, from the agent's `--server-node` and `--server`). The
association, in order:

1. a named node id: that edge server while it is live; none (the device waits,
   unplanned) while it is not, never another server;
2. the address the device sends to, when it is the address an edge server
   registered (that server while it is live; none while it is stale): equal
   after lower-casing, loopback names taken as one (`localhost`, `127.0.0.1`,
   `::1`), or the same port and one host the first DNS label of the other
   (`edge-0.edge.ns.svc:50051` is `edge-0:50051`, the name a StatefulSet pod
   registers);
3. neither, with one live edge server: that one, so a one-server setup whose
   addresses do not match (a container's host name against its service name)
   plans as it did; with several, a device that sends to an address no server
   registered is in no group (name the server with `--server-node`), and one
   that names nothing at all (an older agent) joins the smallest node id.
   `GET /v1/nodes` says which rule applied, and why a device is in no group.

Every rule depends only on who is live, never on registration order.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.auth import NODE_ID
from controller.registry import Node
from splitbed.errors import InvalidArgument
from splitbed.v1 import control_pb2

LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
MAX_ADDRESS = 256


@dataclass(frozen=True)
class Association:
    server: str | None  # the edge server's node id; None: in no group
    by: str  # "node id" | "address" | "default" | "none"
    why: str = ""  # when in no group: why not


def check_server_ref(profile: control_pb2.NodeProfile) -> None:
    """Bounded and well formed, or InvalidArgument naming the field."""
    if profile.server_node_id and not NODE_ID.match(profile.server_node_id):
        raise InvalidArgument(f"profile.server_node_id {profile.server_node_id[:80]!r}: 1-64 characters of "
                              "A-Z a-z 0-9 . _ -, starting with a letter or digit")
    if len(profile.server_address) > MAX_ADDRESS:
        raise InvalidArgument(f"profile.server_address longer than {MAX_ADDRESS} characters")


def _split(address: str) -> tuple[str, str]:
    host, sep, port = address.strip().lower().rpartition(":")
    if not sep:
        return address.strip().lower(), ""
    return host.strip("[]"), port


def same_address(a: str, b: str) -> bool:
    """True when two host:port addresses name the same edge server (see the module note)."""
    (ha, pa), (hb, pb) = _split(a), _split(b)
    if not ha or not hb or pa != pb:
        return False
    if ha == hb or (ha in LOOPBACK and hb in LOOPBACK):
        return True
    return ha.split(".", 1)[0] == hb or hb.split(".", 1)[0] == ha


def associate(device: Node, servers: list[Node], registered: list[Node] | None = None) -> Association:
    """The group of `device` among the live `servers` (`registered`: every edge server, stale ones too)."""
    named = device.profile.server_node_id
    if named:
        if any(s.node_id == named for s in servers):
            return Association(named, "node id")
        return Association(None, "none", f"names edge server {named!r}, which is not registered (or is stale)")
    ordered = sorted(servers, key=lambda s: s.node_id)
    live = {s.node_id for s in servers}
    address = device.profile.server_address
    if address:
        for s in sorted(registered or servers, key=lambda s: (s.node_id not in live, s.node_id)):
            if same_address(address, s.address):
                if s.node_id in live:
                    return Association(s.node_id, "address")
                return Association(None, "none", f"sends to {address[:80]!r}, the address of edge server "
                                   f"{s.node_id!r}, which is stale")
    if not ordered:
        return Association(None, "none", "no live edge server")
    if address and len(ordered) > 1:
        return Association(None, "none", f"sends to {address[:80]!r}, which no live edge server registered "
                               "as its address (name the server with the agent's --server-node)")
    return Association(ordered[0].node_id, "default")


def membership(devices: list[Node], servers: list[Node], registered: list[Node]) -> dict[str, list[Node]]:
    """Live devices by the live server whose group they are in (each list in id order); servers without
    devices are left out."""
    groups: dict[str, list[Node]] = {}
    for d in sorted(devices, key=lambda n: n.node_id):
        server = associate(d, servers, registered).server
        if server is not None:
            groups.setdefault(server, []).append(d)
    return groups
