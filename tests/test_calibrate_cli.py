"""`device-agent calibrate` / `edge-server calibrate` where no meter exists keep the configured values and say so."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.launch import ROOT, child_env


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, "calibrate", *args], capture_output=True, text=True,
                          env=child_env(), cwd=ROOT, timeout=300)


def test_agent_calibrate_without_meter_keeps_configured_values():
    # The emulated clock's host-speed check is not what this test is about: state the host speed.
    proc = _run("device_agent", "--clock", "emulated", "--host-flops-per-s", "1e12", "--energy", "model",
                "--power-coeff", "7e-29", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["measured"] is False and result["phi"] == 7e-29 and result["source"] == "configured"
    assert "model" in result["reason"]


def test_server_calibrate_without_clock_says_why():
    proc = _run("edge_server", "--clock", "none")
    assert proc.returncode == 0, proc.stderr
    assert "not calibrated" in proc.stdout and "no clock backend" in proc.stdout
