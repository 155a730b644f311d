"""`experiments run ... --mode live --controller URL`: attach to a controller and an edge server a user started.

As a user would: `controller serve` and `edge-server serve --controller ...` on free ports, a README-style
`device-agent run` before (its default fp32 encoding registers `device-0` with another payload than the sweep's
fp16), then `experiments run --config F --mode live --controller URL` as a subprocess. The driver must launch and
register its own agent, produce feasible live rows with measured latency, and put the controller's budget and
pins back. A sweep whose live setting the running edge server does not match fails naming the mismatch instead
of writing rows.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.launch import ROOT, Proc, child_env, controller_and_edge, start

EDGE_FLAGS = ("--model", "minilm", "--clock", "emulated", "--clock-profile", "edge-cpu", "--pue", "2",
              "--power-coeff", "1e-28", "--profile-seq-len", "64", "--profile-seq-lens", "64",
              # The emulated profile's check against a host other jobs load (the driver's own fallback figure).
              "--host-flops-per-s", "96e9")


def _sweep(tmp: Path, **live: object) -> Path:
    cfg = {"name": "fig6", "figure": "fig6", "schemes": ["joint"], "live_schemes": ["joint"],
           "methods": [{"name": "magnitude", "latency_s": 0.35, "energy_j": 0.015}],
           "live": {"splits": [2], "requests_per_point": 4, **live}}
    path = tmp / f"sweep-{len(list(tmp.glob('sweep-*')))}.json"
    path.write_text(json.dumps(cfg))
    return path


def _experiments(controller: Proc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "experiments", "run", "--mode", "live", "--controller",
                           controller.rest_url, "--controller-grpc", controller.address, *args], cwd=ROOT,
                          env=child_env(COLUMNS="200"), capture_output=True, text=True, timeout=240, check=False)


@pytest.fixture(scope="module")
def system() -> Iterator[tuple[Proc, Proc]]:
    with controller_and_edge(["--latency-budget-s", "0.2", "--energy-budget-j", "0.05"],
                             lambda c: start("edge_server", ["serve", "--host", "127.0.0.1", "--controller",
                                                             c.address, *EDGE_FLAGS])) as pair:
        yield pair


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_attach_runs_feasible_live_points(system: tuple[Proc, Proc], tmp_path: Path) -> None:
    controller, edge = system
    # A user's own agent ran first (README quick start): device-0 is registered with an fp32 payload.
    user = subprocess.run([sys.executable, "-m", "device_agent", "run", "--server", edge.address, "--controller",
                           controller.address, "--clock", "emulated", "--host-flops-per-s", "96e9", "--seq-len", "64",
                           "--repeat", "1", "--quiet", "--out", str(tmp_path / "user.jsonl")],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120, check=False)
    assert user.returncode == 0, user.stdout[-2000:] + user.stderr[-2000:]
    with httpx.Client(base_url=controller.rest_url, timeout=30) as http:
        assert http.put("/v1/pins", json={"split": 3}).status_code == 200
        before = http.get("/v1/plan").json()
        assert [n["profile"]["encoding"] for n in http.get("/v1/nodes").json() if n["role"] == "device"] == ["fp32"]

        out = tmp_path / "out"
        run = _experiments(controller, "--config", str(_sweep(tmp_path)), "--out", str(out))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        with (out / "fig6.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        # Split 2 sends an uplink payload: planned for the user's fp32 agent it was infeasible at this budget.
        assert [(r["mode"], r["split"]) for r in rows] == [("live", "2")]
        for r in rows:
            assert r["status"] == "optimal", r
            assert float(r["measured_latency_s"]) > 0 and float(r["predicted_latency_s"]) > 0, r
            assert int(r["n_requests"]) >= 2 and float(r["cosine_mean"]) > 0, r
        # The plan the points ran under was made for the driver's agent (fp16), not the user's.
        nodes = json.loads((out / "fig6.live-magnitude.json").read_text())["nodes"]
        assert [n["profile"]["encoding"] for n in nodes if n["role"] == "device"] == ["fp16"]
        after = http.get("/v1/plan").json()
        assert (after["budget"], after["pins"]) == (before["budget"], before["pins"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_attach_names_what_does_not_match(system: tuple[Proc, Proc], tmp_path: Path) -> None:
    controller, _ = system
    out = tmp_path / "out"
    run = _experiments(controller, "--config", str(_sweep(tmp_path, server_clock_profile="raspberry-pi-4")),
                       "--out", str(out))
    assert run.returncode == 3, run.stdout[-3000:] + run.stderr[-3000:]
    said = run.stdout + run.stderr
    assert "not profile 'raspberry-pi-4'" in said and "--clock-profile raspberry-pi-4" in said, said[-3000:]
    assert not (out / "fig6.csv").exists() or len((out / "fig6.csv").read_text().splitlines()) <= 1


def test_no_attached_edge_is_a_clear_error(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "experiments", "run", "fig6", "--mode", "live", "--quick",
                          "--controller", "http://127.0.0.1:9", "--out", str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    said = run.stdout + run.stderr
    assert run.returncode == 3 and "no controller REST API at http://127.0.0.1:9" in said, said[-3000:]


ADMIN_TOKEN, EDGE_TOKEN = "admin-" + "a" * 32, "edge-" + "e" * 32


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_attach_to_a_controller_with_tokens(tmp_path: Path) -> None:
    """A controller started with --token-file: without --token-file the run stops naming it (no rows); with
    the admin token's file it runs (REST writes with the token, the driver's agent registers with it)."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"admin {ADMIN_TOKEN}\nnode:edge-0 {EDGE_TOKEN}\n")
    tokens.chmod(0o600)
    admin = tmp_path / "admin.token"
    admin.write_text(ADMIN_TOKEN + "\n")
    with controller_and_edge(["--latency-budget-s", "0.2", "--energy-budget-j", "0.05", "--token-file", str(tokens)],
                             lambda c: start("edge_server", ["serve", "--host", "127.0.0.1", "--controller",
                                                             c.address, "--node-id", "edge-0", "--token",
                                                             EDGE_TOKEN, *EDGE_FLAGS])) as (controller, _):
        refused = _experiments(controller, "--config", str(_sweep(tmp_path)), "--out", str(tmp_path / "no"))
        said = refused.stdout + refused.stderr
        assert refused.returncode == 3 and "--token-file" in said, said[-3000:]
        assert ADMIN_TOKEN not in said
        assert not (tmp_path / "no" / "fig6.csv").exists() or \
            len((tmp_path / "no" / "fig6.csv").read_text().splitlines()) <= 1

        out = tmp_path / "out"
        run = _experiments(controller, "--config", str(_sweep(tmp_path)), "--out", str(out),
                           "--token-file", str(admin))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert ADMIN_TOKEN not in run.stdout + run.stderr
        with (out / "fig6.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [(r["mode"], r["split"], r["status"]) for r in rows] == [("live", "2", "optimal")], rows
        assert float(rows[0]["measured_latency_s"]) > 0


def test_attach_flags_are_checked_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.cli import main

    assert main(["run", "fig6", "--mode", "live", "--token-file", str(tmp_path / "t"), "--out", str(tmp_path)]) == 2
    said = "".join(capsys.readouterr())
    assert "go with --controller URL" in said, said
    assert main(["run", "fig6", "--mode", "live", "--controller", "http://127.0.0.1:9", "--token-file",
                 str(tmp_path / "missing.token"), "--out", str(tmp_path)]) == 2
    said = "".join(capsys.readouterr())
    assert "--token-file" in said and "missing.token" in said, said
    assert not list(tmp_path.glob("*.csv"))
