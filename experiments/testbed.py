"""The testbed's three processes, started through their command lines on loopback (or a running controller
attached by URL), and the REST calls a user would make to steer them.

Nothing here calls the controller, the edge server or the agent in-process: each is a `python -m ...`
child process, and the controller is driven only through its REST API.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from experiments.config import ROOT, LiveSpec

logger = logging.getLogger(__name__)
HUGE_LATENCY_S = 1e3
HUGE_ENERGY_J = 1e3
# The live setting's fixed parts: the node id the driver's agent registers under, and each side's energy
# constants (an attached edge server must run with the same; experiments/attach.py checks it).
DEVICE_ID = "device-0"
SERVER_PUE = 2.0
SERVER_POWER_COEFF = 1e-28
DEVICE_PUE = 1.0
DEVICE_POWER_COEFF = 5e-29


class AttachMismatch(RuntimeError):
    """Attach mode: the running controller or edge server is not started as the sweep's live setting needs."""


@dataclass(frozen=True)
class AttachTo:
    """A running controller to attach to: its REST URL, its gRPC address (where the driver's agent registers)
    and the bearer token for a controller started with `--token-file` (None: it has none)."""

    url: str
    grpc: str
    token: str | None = None

    def __repr__(self) -> str:  # never print the token
        return f"AttachTo(url={self.url!r}, grpc={self.grpc!r}, token={'***' if self.token else None})"


def child_env(threads: int = 1) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_WAIT_POLICY": "PASSIVE"})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def spawn(name: str, module: str, args: list[str], workdir: Path, threads: int = 1,
          env: dict[str, str] | None = None) -> Child:
    (workdir / f"{name}.port").unlink(missing_ok=True)  # a retry must not read the previous attempt's ports
    log = workdir / f"{name}.log"
    popen = subprocess.Popen([sys.executable, "-m", module, *args], stdout=log.open("wb"),
                             stderr=subprocess.STDOUT, env={**child_env(threads), **(env or {})}, cwd=ROOT)
    return Child(name, popen, log)


def wait_ports(child: Child, port_file: Path, timeout: float = 300.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while not port_file.exists() or not port_file.read_text().strip():
        if child.popen.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.popen.returncode}:\n{child.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{child.name} did not start within {timeout:.0f} s:\n{child.tail()}")
        time.sleep(0.2)
    return [int(p) for p in port_file.read_text().split()]


@dataclass
class Testbed:
    """A controller (REST URL), its edge server and what an agent run needs to reach them."""

    live: LiveSpec
    method: str
    url: str = ""
    control_address: str = ""
    edge_address: str = ""
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="experiments-")))
    children: list[Child] = field(default_factory=list)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=300.0))

    # Set after the emulated clock refused a profile because a loaded host measured slower than it: the
    # check is then passed this figure (the profile's peak x 1.5) and the run says so.
    host_flops_override: float | None = None
    # Attached to a user's controller: its budget and pins before the sweep, put back when the sweep ends.
    attached_state: dict[str, Any] | None = None
    # The attached controller's bearer token (admin role): REST calls and the driver's agent use it.
    token: str | None = field(default=None, repr=False)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                self._start()
                return
            except RuntimeError as exc:
                self.stop_children()
                if "faster than this host" not in str(exc) or attempt == attempts - 1:
                    raise
                logger.warning("edge server refused its emulated profile (host busy), attempt %d: %s", attempt + 1,
                               str(exc)[-300:])
                if attempt == attempts - 2:
                    self.host_flops_override = 1.5 * 2.0e9 * 32.0
                time.sleep(10)

    def host_flags(self) -> list[str]:
        return [] if self.host_flops_override is None else ["--host-flops-per-s", str(self.host_flops_override)]

    def _start(self) -> None:
        lv = self.live
        pf = self.workdir / "controller.port"
        ctrl = spawn("controller", "controller",
                     ["serve", "--host", "127.0.0.1", "--grpc-port", "0", "--rest-port", "0", "--port-file", str(pf),
                      "--method", self.method, "--encoding", lv.encoding, "--rho-min-device", str(lv.rho_min),
                      "--rho-min-server", str(lv.rho_min), "--latency-budget-s", str(HUGE_LATENCY_S),
                      "--energy-budget-j", str(HUGE_ENERGY_J), "--log-level", "WARNING",
                      # A fresh state per start: a restored budget or pin would leak into the next sweep.
                      "--state", str(self.workdir / f"controller-state-{time.monotonic_ns()}.sqlite")], self.workdir)
        self.children.append(ctrl)
        grpc_port, rest_port = wait_ports(ctrl, pf)
        self.url = f"http://127.0.0.1:{rest_port}"
        self.control_address = f"127.0.0.1:{grpc_port}"
        pf = self.workdir / "edge.port"
        edge = spawn("edge", "edge_server",
                     ["serve", "--host", "127.0.0.1", "--port", "0", "--port-file", str(pf), "--model", lv.model,
                      "--controller", self.control_address, "--clock", "emulated", "--clock-profile",
                      lv.server_clock_profile, "--pue", str(SERVER_PUE), "--power-coeff", str(SERVER_POWER_COEFF),
                      "--profile-seq-len",
                      str(lv.seq_len), "--node-id", "edge-0", "--threads", "1", "--log-level", "WARNING",
                      *self.host_flags()], self.workdir)
        self.children.append(edge)
        (port,) = wait_ports(edge, pf)[:1]
        self.edge_address = f"127.0.0.1:{port}"
        self.wait(lambda: any(n["role"] == "server" for n in self.get("/v1/nodes")), 300, "the edge server to register")

    def attach(self, to: AttachTo) -> None:
        """Use a running controller and the one edge server registered with it; what they must be started
        with is checked by `experiments.attach.verify` once the driver's agent has registered."""
        self.url = to.url.rstrip("/")
        self.control_address = to.grpc
        self.token = to.token
        if to.token:
            self.http.headers["Authorization"] = f"Bearer {to.token}"
        try:
            nodes = self.get("/v1/nodes")
        except httpx.HTTPError as exc:
            raise AttachMismatch(f"no controller REST API at {self.url}: {exc}") from None
        servers = [n for n in nodes if n["role"] == "server" and not n.get("stale")]
        if len(servers) != 1:
            stale = [n["node_id"] for n in nodes if n["role"] == "server" and n.get("stale")]
            raise AttachMismatch(
                f"controller {self.url} has {len(servers)} live edge servers registered "
                f"({', '.join(n['node_id'] for n in servers) or 'none'}; stale: {', '.join(stale) or 'none'}); "
                "attach mode needs exactly one: start one with `edge-server serve --controller HOST:GRPC_PORT` "
                "(see `experiments run --help`)")
        self.edge_address = servers[0]["address"]
        plan = self.get("/v1/plan")
        self.attached_state = {"budget": plan["budget"], "pins": self.get("/v1/pins")}

    def restore_attached(self) -> None:
        """Put the attached controller's budget and pins back as the user left them (best effort)."""
        state, self.attached_state = self.attached_state, None
        if state is None:
            return
        try:
            plan = self.get("/v1/plan")
            if plan["budget"] == state["budget"] and plan["pins"] == state["pins"]:
                return
            self.put("/v1/budget", {"latency_s": HUGE_LATENCY_S, "energy_j": HUGE_ENERGY_J})
            pins = state["pins"]  # as GET /v1/pins gave them, which PUT takes back
            code, body = self.put("/v1/pins", pins) if pins else (200, None)
            if not pins:
                self.http.delete(self.url + "/v1/pins").raise_for_status()
            if code == 200:
                code, body = self.put("/v1/budget", state["budget"])
            if code != 200:
                logger.warning("could not restore the controller's budget %s and pins %s: %s", state["budget"],
                               pins, body)
        except (httpx.HTTPError, RuntimeError) as exc:
            logger.warning("could not restore the controller's budget and pins: %s", exc)

    def stop(self) -> None:
        self.restore_attached()
        self.stop_children()
        self.http.close()

    def stop_children(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()

    # -- REST --------------------------------------------------------------------------------
    def get(self, path: str) -> Any:
        r = self.http.get(self.url + path)
        r.raise_for_status()
        return r.json()

    def put(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        r = self.http.put(self.url + path, json=body)
        if r.status_code >= 500:
            raise RuntimeError(f"PUT {path} -> {r.status_code}: {r.text[:500]}")
        return r.status_code, r.json()

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        r = self.http.post(self.url + path, json=body)
        if r.status_code >= 500:
            raise RuntimeError(f"POST {path} -> {r.status_code}: {r.text[:500]}")
        return r.status_code, r.json()

    def wait(self, predicate: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            for c in self.children:
                if c.popen.poll() is not None:
                    raise RuntimeError(f"{c.name} exited with {c.popen.returncode}:\n{c.tail()}")
            time.sleep(0.2)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")

    def nodes(self, role: str) -> list[dict[str, Any]]:
        """The registered nodes of `role` the controller plans with (stale ones are left out of planning)."""
        return [n for n in self.get("/v1/nodes") if n["role"] == role and not n.get("stale")]

    def device(self) -> dict[str, Any]:
        """The driver's own agent as the controller lists it (its profile; it may have gone stale since its
        last run, which `LiveRunner.ensure_device` mends before the next point)."""
        for n in self.get("/v1/nodes"):
            if n["role"] == "device" and n["node_id"] == DEVICE_ID:
                return dict(n)
        raise RuntimeError(f"the device agent {DEVICE_ID!r} is not registered with {self.url}")

    def server(self) -> dict[str, Any]:
        """The edge server the controller plans with."""
        servers = self.nodes("server")
        if not servers:
            raise RuntimeError(f"no live edge server is registered with {self.url}")
        return servers[0]

    def wait_server_applied(self, version: int, timeout: float = 300.0) -> None:
        self.wait(lambda: all(n["applied_version"] >= version for n in self.nodes("server")), timeout,
                  f"the edge server to apply plan version {version}")

    # -- the agent ---------------------------------------------------------------------------
    def run_agent(self, texts: Path, out: Path, timeout: float = 900.0) -> None:
        """One `device-agent run` under the controller: it registers, applies the current plan, runs the texts."""
        lv, link = self.live, self.live.link
        if not self.control_address:
            raise RuntimeError("the controller's gRPC address is unknown: pass --controller-grpc HOST:PORT")
        args = ["run", "--server", self.edge_address, "--controller", self.control_address, "--model", lv.model,
                "--clock", "emulated", "--clock-profile", lv.device_clock_profile, "--pue", str(DEVICE_PUE),
                "--power-coeff", str(DEVICE_POWER_COEFF), "--seq-len", str(lv.seq_len), "--encoding", lv.encoding,
                "--texts", str(texts), "--out", str(out), "--node-id", DEVICE_ID, "--quiet", "--warmup", "2",
                "--threads", "1", "--p-max-w", str(link.p_max_w), "--bandwidth-hz", str(link.bandwidth_hz),
                "--noise-psd-w-per-hz", str(link.noise_psd_w_per_hz), "--distance-m", str(link.distance_m),
                "--k0-db", str(link.k0_db), "--path-loss-exponent", str(link.path_loss_exponent),
                "--telemetry-every", "1000000", "--log-level", "WARNING"]
        for attempt in range(3):
            # The token by environment, not argv: other users of the host can read command lines.
            child = spawn("agent", "device_agent", [*args, *self.host_flags()], self.workdir,
                          env={"AGENT_TOKEN": self.token} if self.token else None)
            try:
                code = child.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                child.stop()
                raise TimeoutError(f"device agent ran past {timeout:.0f} s:\n{child.tail()}") from None
            if code == 0:
                return
            if "faster than this host" not in child.tail() or attempt == 2:
                raise RuntimeError(f"device agent exited with {code}:\n{child.tail()}")
            logger.warning("device agent refused its emulated profile (host busy), attempt %d", attempt + 1)
            if attempt == 1:
                self.host_flops_override = 1.5 * 2.0e9 * 32.0
            time.sleep(10)
