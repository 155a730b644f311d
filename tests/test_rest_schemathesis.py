"""A bounded schemathesis run against the controller's OpenAPI schema: no generated request gets a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_nodes import Node
from tests.launch import child_env, start_controller

pytestmark = pytest.mark.slow


def _schemathesis() -> str | None:
    local = Path(sys.executable).parent / "schemathesis"
    return str(local) if local.exists() else shutil.which("schemathesis")


@pytest.mark.skipif(_schemathesis() is None, reason="schemathesis is in the dev extra")
def test_no_server_errors_from_generated_requests(tmp_path):
    # Live nodes, so budget and pin changes reach the planner and the push, not only validation.
    proc = start_controller(["--latency-budget-s", "0.3", "--energy-budget-j", "0.1", "--ack-timeout-s", "10"])
    server = Node(proc.address, "edge-0", "server")
    device = Node(proc.address, "device-0", "device")
    try:
        server.next(), device.next()
        exe = _schemathesis()
        assert exe is not None
        run = subprocess.run(
            [exe, "run", f"{proc.rest_url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "10",
             "--seed", "1", "--workers", "1", "--request-timeout", "120"],
            capture_output=True, text=True, env=child_env(), cwd=tmp_path, timeout=500)
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
        assert "passed" in run.stdout
    finally:
        server.close(), device.close()
        assert proc.stop() == 0, proc.output()
