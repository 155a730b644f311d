"""A real edge server and device agent follow a controller over mutual TLS with tokens; listeners bind --host.

Every hop is TLS with client certificates: agent -> edge (inference), agent
-> controller and edge -> controller (control, with each node's token). No
`--host` is given, so every listener, /metrics included, must be on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import psutil
import pytest

from splitbed.tls import httpx_ssl_context
from tests.launch import ROOT, child_env, start, start_controller, start_edge
from tests.test_security import TOKENS, files, pki, server_flags  # noqa: F401 - pki is a fixture

pytestmark = pytest.mark.slow


def listening(pid: int) -> set[str]:
    # gRPC may bind 127.0.0.1 as an IPv4-mapped IPv6 socket: still loopback only.
    return {c.laddr.ip.removeprefix("::ffff:") for c in psutil.Process(pid).net_connections("inet")
            if c.status == psutil.CONN_LISTEN}


def test_agent_and_edge_over_mutual_tls_with_tokens(pki, tmp_path):  # noqa: F811
    controller = start_controller([*server_flags(pki), "--token-file", str(pki / "tokens"),
                                   "--latency-budget-s", "0.5", "--energy-budget-j", "1.0",
                                   "--rho-min-device", "0.5", "--rho-min-server", "0.5"], tls=files(pki, "admin"))
    edge = None
    try:
        edge_tls = files(pki, "edge-0")
        edge = start("edge_server", ["serve", "--model", "minilm", "--split", "3", "--controller", controller.address,
                                     "--node-id", "edge-0", "--tls-cert", str(edge_tls.cert), "--tls-key",
                                     str(edge_tls.key), "--tls-ca", str(edge_tls.ca), "--token",
                                     TOKENS["node:edge-0"], "--metrics-port", "0"], tls=edge_tls)
        token_file = tmp_path / "device-1.token"
        token_file.write_text(TOKENS["node:device-1"] + "\n")
        dev = files(pki, "device-1")
        out = tmp_path / "out.jsonl"
        run = subprocess.run(
            [sys.executable, "-m", "device_agent", "run", "--server", edge.address, "--controller",
             controller.address, "--node-id", "device-1", "--split", "3", "--warmup", "0", "--quiet",
             "--tls-cert", str(dev.cert), "--tls-key", str(dev.key), "--tls-ca", str(dev.ca),
             "--token-file", str(token_file), "--out", str(out)],
            capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=400)
        assert run.returncode == 0, run.stdout + run.stderr
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert records and all(r["config_version"] >= 1 for r in records)
        url = f"https://127.0.0.1:{controller.rest_port}"
        with httpx.Client(verify=httpx_ssl_context(files(pki, "admin")), timeout=30) as client:
            nodes = {n["node_id"]: n for n in client.get(url + "/v1/nodes").json()}
        assert nodes["edge-0"]["applied_version"] >= 1 and nodes["device-1"]["applied_version"] >= 1
        for proc in (controller, edge):
            assert listening(proc.popen.pid) == {"127.0.0.1"}, proc.output()
        ports = {c.laddr.port for c in psutil.Process(edge.popen.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN}
        assert len(ports) == 2, ports  # gRPC and /metrics, both on 127.0.0.1
    finally:
        if edge is not None:
            edge.stop()
        controller.stop()


def test_agent_with_a_wrong_token_stops_at_once_naming_it(tmp_path):
    """A refused token is not transient: the agent stops with the controller's reason instead of retrying
    until its wait for a plan (120 s) runs out with "is it running?"."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"admin {'a' * 32}\nnode:device-0 {'d' * 32}\n")
    tokens.chmod(0o600)
    controller = start_controller(["--token-file", str(tokens)])
    edge = start_edge(3, 1.0)
    try:
        for token, code in (("x" * 32, "UNAUTHENTICATED"), ("d" * 32, "PERMISSION_DENIED")):
            node = "device-0" if code == "UNAUTHENTICATED" else "device-9"  # a good token for another node
            run = subprocess.run(
                [sys.executable, "-m", "device_agent", "run", "--server", edge.address, "--controller",
                 controller.address, "--node-id", node, "--split", "3", "--warmup", "0", "--quiet",
                 "--token", token, "--wait-config-s", "600", "--out", str(tmp_path / "out.jsonl")],
                capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=300)
            said = run.stdout + run.stderr
            assert run.returncode != 0 and code in said and "--token-file" in said, said[-3000:]
            assert "is it running" not in said and "Traceback" not in said, said[-3000:]
    finally:
        edge.stop()
        controller.stop()
