"""docker/report.py, the compose run's verdict: real subprocess against a real HTTP server on a free port."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parent.parent / "docker" / "report.py"


def _nodes(backend: str = "tbf") -> list[dict]:
    return [
        {"node_id": f"device-{i}", "role": "device", "applied": {"freq_device_hz": 1e9, "power_w": 0.4},
         "telemetry": {"gain": 2.4e-9},
         "applied_sources": {"power_w": "enforced:tc-tbf"}, "ack_error": None,
         "profile": {"n_layers": 6, "link": {"backend": backend}}}
        for i in (1, 2)
    ]


def _plan(*reasons: str) -> dict:
    """/v1/plan of a two-device group: each device's own answer, and a history with these reasons."""
    answer = {"split": 3, "rho_device": 0.8, "rho_server": 1.0, "power_w": 0.27, "freq_device_hz": 1e9,
              "freq_server_hz": 2e9}
    history = [{"version": v, "reason": r, "at": time.time() - 300 + v} for v, r in enumerate(reasons, start=1)]
    return {"version": 2, "groups": [{"server": "edge-0", "devices": {
        f"device-{i}": {"version": i, "answer": answer} for i in (1, 2)}}], "history": history}


@pytest.fixture
def controller():
    state = {"nodes": _nodes(), "plan": _plan()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(state["plan"] if self.path == "/v1/plan" else state["nodes"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


def _write(results: Path, node: str, split: int, rho: float, measured: float, predicted: float, version: int = 2,
           queue: float = 0.004):
    recs = [{"config_version": version, "split": split, "rho": rho, "rho_server": 1.0,
             "timings": {"e2e_s": measured, "server_other_s": queue}, "predicted": {"latency_s": predicted}}
            for _ in range(5)]
    (results / f"{node}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def _run(url: str, results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPORT), "--results", str(results), "--controller", url, *extra],
                          capture_output=True, text=True, timeout=60)


def test_pass_with_knobs_and_error_in_bounds(controller, tmp_path):
    url, _ = controller
    _write(tmp_path, "device-1", 3, 0.8, 0.072, 0.070)
    _write(tmp_path, "device-2", 4, 0.9, 0.066, 0.070)
    out = _run(url, tmp_path, "--max-error", "0.15", "--expect-knobs", "--expect-link", "tbf")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "report: PASS" in out.stdout and "+2.9%" in out.stdout
    assert "4.0ms" in out.stdout  # each agent's server queueing
    assert "0.270" in out.stdout and " 1000 " in out.stdout and " 2000 " in out.stdout  # its own plan's p, f, f~


@pytest.mark.parametrize(("split", "rho", "measured", "why"), [
    (3, 0.8, 0.10, "prediction error"),
    (0, 0.8, 0.07, "puts no layers"),
    (6, 0.8, 0.07, "puts no layers"),
    (3, 1.0, 0.07, "prunes little or nothing"),
    (3, 0.95, 0.07, "prunes little or nothing"),
])
def test_each_check_fails_when_broken(controller, tmp_path, split, rho, measured, why):
    url, _ = controller
    _write(tmp_path, "device-1", split, rho, measured, 0.070)
    _write(tmp_path, "device-2", 3, 0.8, 0.070, 0.070)
    out = _run(url, tmp_path, "--max-error", "0.15", "--expect-knobs")
    assert out.returncode == 1 and why in out.stdout, out.stdout


def test_missing_records_plan_or_link_fail(controller, tmp_path):
    url, state = controller
    _write(tmp_path, "device-1", 3, 0.8, 0.07, 0.07, version=0)
    out = _run(url, tmp_path)
    assert out.returncode == 1 and "device-2" in out.stdout and "config_version 0" in out.stdout
    _write(tmp_path, "device-1", 3, 0.8, 0.07, 0.07)
    _write(tmp_path, "device-2", 3, 0.8, 0.07, 0.07)
    state["nodes"] = _nodes(backend="pacer")
    out = _run(url, tmp_path, "--expect-link", "tbf")
    assert out.returncode == 1 and "link backend 'pacer'" in out.stdout


def test_drift_replans_counted_and_bounded(controller, tmp_path):
    url, state = controller
    _write(tmp_path, "device-1", 3, 0.8, 0.07, 0.07)
    _write(tmp_path, "device-2", 3, 0.8, 0.07, 0.07)
    state["plan"] = _plan("nodes registered", "nodes registered")
    out = _run(url, tmp_path, "--max-drift-replans", "0")
    assert out.returncode == 0 and "0 re-plan(s) for channel drift" in out.stdout, out.stdout
    state["plan"] = _plan("nodes registered", "nodes registered", "channel drift")
    out = _run(url, tmp_path, "--max-drift-replans", "0")
    assert out.returncode == 1 and "1 channel drift re-plans" in out.stdout, out.stdout
    # without a gain estimate from an agent the count could not have been anything but 0: not a pass
    state["plan"] = _plan("nodes registered", "nodes registered")
    state["nodes"][1]["telemetry"] = {}
    out = _run(url, tmp_path, "--max-drift-replans", "0")
    assert out.returncode == 1 and "device-2 never estimated its channel gain" in out.stdout, out.stdout


def test_host_bound_emulation_is_named(controller, tmp_path):
    url, _ = controller
    _write(tmp_path, "device-1", 3, 0.8, 0.07, 0.07)
    _write(tmp_path, "device-2", 3, 0.8, 0.07, 0.07)
    recs = [json.loads(line) for line in (tmp_path / "device-2.jsonl").read_text().splitlines()]
    for r in recs:
        r["timings"].update(device_compute_s=0.05, device_stretch_s=0.0, server_compute_s=0.02, server_stretch_s=0.01)
    (tmp_path / "device-2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = _run(url, tmp_path)
    assert out.returncode == 0 and out.stdout.count("host-bound") == 1, out.stdout
    assert "100% of device and 0% of server" in out.stdout
