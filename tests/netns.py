"""Two network namespaces joined by a veth pair, and the testbed's processes started inside them.

Root-only plumbing for system tests: every address lives in 10.201.x.x/30 inside
the namespaces, so nothing the tests send can leave them. The test process
itself stays in the host namespace and reaches into the pair only through
``ip netns exec`` (processes) and ``ip -n`` / ``tc -n`` (configuration).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.launch import ROOT, child_env, stop_process, wait_port_file

logger = logging.getLogger(__name__)


class NetnsUnavailable(Exception):
    """This host cannot give us network namespaces (not root, no iproute2, no CAP_NET_ADMIN)."""


def missing_prerequisite() -> str | None:
    """Why namespace tests cannot run here, or None when they can (the namespaces are tried later)."""
    if os.geteuid() != 0:
        return "needs root: creates network namespaces and a veth pair (run as root, e.g. in CI)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` from iproute2 (apt-get install iproute2)"
    return None


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=15)


@dataclass(frozen=True)
class VethPair:
    """Device side ``dev_ns``/``dev_if``/``dev_addr`` and edge side ``edge_ns``/``edge_if``/``edge_addr``."""

    dev_ns: str
    dev_if: str
    dev_addr: str
    edge_ns: str
    edge_if: str
    edge_addr: str


@contextmanager
def veth_namespaces(tag: str | None = None) -> Iterator[VethPair]:
    """Create ``sbt-<tag>-dev`` and ``sbt-<tag>-edge`` joined by a veth /30; delete both on exit.

    Raises NetnsUnavailable when the first ``ip netns add`` is refused.
    """
    reason = missing_prerequisite()
    if reason:
        raise NetnsUnavailable(reason)
    tag = tag or str(os.getpid())
    dev_ns, edge_ns = f"sbt-{tag}-dev", f"sbt-{tag}-edge"
    # A per-run /30 so a leftover pair from a killed run cannot collide with ours.
    third, fourth = (os.getpid() >> 6) % 250, (os.getpid() % 64) * 4
    net = f"10.201.{third}"
    pair = VethPair(dev_ns, "sbt-dev", f"{net}.{fourth + 1}", edge_ns, "sbt-edge", f"{net}.{fourth + 2}")
    try:
        _ip("netns", "add", dev_ns)
    except subprocess.CalledProcessError as exc:
        raise NetnsUnavailable(f"`ip netns add` refused (no CAP_SYS_ADMIN/NET_ADMIN?): {exc.stderr.strip()}") from exc
    try:
        _ip("netns", "add", edge_ns)
        _ip("-n", dev_ns, "link", "add", pair.dev_if, "type", "veth", "peer", "name", pair.edge_if, "netns", edge_ns)
        _ip("-n", dev_ns, "addr", "add", f"{pair.dev_addr}/30", "dev", pair.dev_if)
        _ip("-n", edge_ns, "addr", "add", f"{pair.edge_addr}/30", "dev", pair.edge_if)
        for ns, dev in ((dev_ns, pair.dev_if), (edge_ns, pair.edge_if)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")
        yield pair
    finally:
        for ns in (dev_ns, edge_ns):
            proc = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True, timeout=15)
            if proc.returncode != 0 and "No such file" not in proc.stderr:
                logger.warning("could not delete netns %s: %s", ns, proc.stderr.strip())


def ns_command(ns: str, args: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


@dataclass
class NsProc:
    """A process started with ``ip netns exec`` (which execs: the pid is the program's own)."""

    popen: subprocess.Popen[bytes]
    log: Path
    ports: list[int] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 15.0) -> int:
        return stop_process(self.popen, timeout)


def start_in_ns(ns: str, module: str, args: Sequence[str], workdir: Path, *,
                port_flags: Sequence[str] = ("--port", "0"), timeout: float = 180.0,
                env: dict[str, str] | None = None) -> NsProc:
    """Run ``python -m module ARGS`` in ``ns`` on port 0 and wait for its port file (written once serving).

    The port file and the process's log go to ``workdir/<module>.port`` and ``.log``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port_file, log = workdir / f"{module}.port", workdir / f"{module}.log"
    cmd = ns_command(ns, [sys.executable, "-m", module, *args, *port_flags, "--port-file", str(port_file)])
    popen = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env or child_env(),
                             cwd=ROOT)
    proc = NsProc(popen, log)
    proc.ports = wait_port_file(popen, port_file, log, timeout, f"{module} in {ns}")
    return proc


# Runs inside the namespace: the REST API listens on an address only reachable from there.
_HTTP = r"""
import json, sys, urllib.error, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=float(sys.argv[4])) as resp:
        status, text = resp.status, resp.read().decode()
except urllib.error.HTTPError as err:
    status, text = err.code, err.read().decode()
print(json.dumps({"status": status, "body": text}))
"""


def ns_http(ns: str, method: str, url: str, body: dict[str, Any] | None = None,
            timeout: float = 120.0) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body) of one request made from inside ``ns``."""
    payload = json.dumps(body) if body is not None else ""
    proc = subprocess.run(ns_command(ns, [sys.executable, "-c", _HTTP, method, url, payload, str(timeout)]),
                          capture_output=True, text=True, timeout=timeout + 15, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} {url} from netns {ns} failed: {proc.stderr.strip()}")
    answer = json.loads(proc.stdout)
    text = answer["body"]
    try:
        return answer["status"], json.loads(text)
    except ValueError:
        return answer["status"], text


def tbf_rate_bps(ns: str, dev: str) -> float | None:
    """The root tbf rate on ``dev`` in ``ns`` as the kernel reports it (tc prints bytes/s in JSON)."""
    proc = subprocess.run(["tc", "-n", ns, "-j", "qdisc", "show", "dev", dev], capture_output=True, text=True,
                          timeout=15, check=True)
    for q in json.loads(proc.stdout or "[]"):
        if q.get("kind") == "tbf" and q.get("root"):
            return float(q["options"]["rate"]) * 8
    return None
