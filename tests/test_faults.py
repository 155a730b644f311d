"""No lost work: records written as they complete, --resume, and an agent that outlives edge restarts.

Real processes: an edge server on a fixed port is stopped (SIGTERM: drain; SIGKILL)
and restarted on the same port while a device agent process runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from device_agent.records import read_records
from tests.launch import ROOT, Proc, child_env, start, start_edge

SPLIT = 2
TEXTS = [f"Sentence number {i} about the weather, the sea and the mountains." for i in range(50)]


def _edge_on(port: int) -> Proc:
    return start("edge_server", ["serve", "--split", str(SPLIT), "--rho", "1.0", "--host", "127.0.0.1",
                                 "--grace-s", "10"], port_flags=("--port", str(port)))


def _agent(tmp: Path, address: str, repeat: int, *extra: str) -> subprocess.Popen[bytes]:
    texts = tmp / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    log = (tmp / "agent.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "device_agent", "run", "--server", address, "--split", str(SPLIT), "--rho", "1.0",
         "--texts", str(texts), "--repeat", str(repeat), "--warmup", "0", "--seq-len", "16", "--quiet",
         "--out", str(tmp / "out.jsonl"), "--reconnect-max-outage-s", "120", "--log-level", "INFO", *extra],
        stdout=log, stderr=subprocess.STDOUT, env=child_env(1), cwd=ROOT)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_lines(path: Path, n: int, agent: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while _lines(path) < n:
        assert agent.poll() is None, f"agent exited early with {agent.returncode}"
        assert time.monotonic() < deadline, f"only {_lines(path)} records after {timeout} s"
        time.sleep(0.05)


def _check(records: list[dict], expected: int) -> None:
    keys = [(r["rep"], r["index"]) for r in records]
    seqs = [r["seq"] for r in records]
    assert len(records) == expected
    assert len(set(keys)) == expected and len(set(seqs)) == expected
    assert not [r for r in records if "error" in r]
    assert len({r["run_id"] for r in records}) == 1


@pytest.mark.slow
def test_thousand_requests_survive_three_edge_restarts(tmp_path):
    edge = start_edge(SPLIT, 1.0)
    port = edge.port
    agent = _agent(tmp_path, edge.address, repeat=20)
    out = tmp_path / "out.jsonl"
    try:
        for at, sig in ((150, signal.SIGTERM), (400, signal.SIGKILL), (650, signal.SIGTERM)):
            _wait_lines(out, at, agent)
            edge.popen.send_signal(sig)
            code = edge.popen.wait(60)
            if sig == signal.SIGTERM:
                assert code == 0, edge.output()  # drained and went
            time.sleep(1.0)
            edge = _edge_on(port)
        assert agent.wait(600) == 0, (tmp_path / "agent.log").read_text()
    finally:
        if agent.poll() is None:
            agent.kill()
        edge.stop()
    records, good = read_records(out)
    assert good == out.stat().st_size
    _check(records, 1000)
    log = (tmp_path / "agent.log").read_text()
    assert "resending" in log and "Traceback" not in log


@pytest.mark.slow
def test_killed_agent_leaves_its_records_and_resumes(tmp_path):
    edge = start_edge(SPLIT, 1.0)
    out = tmp_path / "out.jsonl"
    try:
        agent = _agent(tmp_path, edge.address, repeat=6)
        _wait_lines(out, 120, agent)
        agent.kill()
        agent.wait()
        records, _ = read_records(out)
        assert len(records) >= 120
        complete = out.read_bytes().rsplit(b"\n", 1)[0]
        for line in complete.splitlines():
            json.loads(line)  # every complete line parses
        resumed = _agent(tmp_path, edge.address, 6, "--resume")
        assert resumed.wait(300) == 0, (tmp_path / "agent.log").read_text()
    finally:
        edge.stop()
    final, _ = read_records(out)
    _check(final, 300)
    assert {r["run_id"] for r in final} == {records[0]["run_id"]}


CONTROLLER_ARGS = ("serve", "--host", "127.0.0.1", "--latency-budget-s", "2", "--energy-budget-j", "2")


def _controller_on(grpc_port: int, state: Path) -> Proc:
    return start("controller", [*CONTROLLER_ARGS, "--state", str(state)],
                 port_flags=("--grpc-port", str(grpc_port), "--rest-port", "0"))


def _rest(controller: Proc, path: str) -> Any:
    return httpx.get(controller.rest_url + path, timeout=30).json()


@pytest.mark.slow
def test_thousand_requests_survive_controller_restarts(tmp_path):
    """Under a controller: SIGTERM and SIGKILL of the controller mid-run lose and duplicate nothing; the
    restarted controller (same state file, same port) continues the plan versions and the nodes re-attach."""
    state = tmp_path / "controller.sqlite"
    controller = _controller_on(0, state)
    grpc_port = controller.port
    edge = start("edge_server", ["serve", "--host", "127.0.0.1", "--controller", controller.address,
                                 "--node-id", "edge-f"])
    agent = _agent(tmp_path, edge.address, 20, "--controller", controller.address, "--node-id", "dev-f")
    out = tmp_path / "out.jsonl"
    try:
        for at, sig in ((200, signal.SIGTERM), (600, signal.SIGKILL)):
            _wait_lines(out, at, agent)
            version = _rest(controller, "/v1/plan")["version"]
            controller.popen.send_signal(sig)
            controller.popen.wait(60)
            time.sleep(1.0)
            controller = _controller_on(grpc_port, state)
            assert _rest(controller, "/v1/plan")["version"] >= version  # versions continue, not from 0
        assert agent.wait(600) == 0, (tmp_path / "agent.log").read_text()
        assert {"edge-f", "dev-f"} <= {n["node_id"] for n in _rest(controller, "/v1/nodes")}
    finally:
        if agent.poll() is None:
            agent.kill()
        edge.stop()
        controller.stop()
    records, good = read_records(out)
    assert good == out.stat().st_size
    _check(records, 1000)
    assert "Traceback" not in (tmp_path / "agent.log").read_text()
