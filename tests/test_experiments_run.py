"""`experiments run all --quick` end to end (real controller, edge server and agents), then `experiments report`.

Checks the CSV contract and that every figure was drawn, not the numbers.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.store import FIG3_COLUMNS, POINT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ("figure", "mode", "model", "method", "scheme", "split", "latency_budget_s", "energy_budget_j", "status",
            "rho_device", "rho_server", "power_w", "freq_device_hz", "freq_server_hz", "predicted_latency_s",
            "predicted_energy_j", "log2_distortion_bound")
LIVE = ("measured_latency_s", "measured_latency_p95_s", "measured_energy_j", "cosine_mean",
        "retrieval_top1_agreement", "n_requests", "prediction_error")
FIG3 = ("model", "method", "keep_ratio", "output_distortion", "parameter_distortion")


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "experiments", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_run_all_quick_and_report(tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = _run("run", "all", "--quick", "--out", str(out), timeout=1700)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    header, rows = _table(out / "fig3.csv")
    assert header == list(FIG3_COLUMNS) and set(FIG3) <= set(header)
    assert {r["model"] for r in rows} >= {"fcdnn-8", "fcdnn-16", "all-MiniLM-L6-v2"}
    for name in ("fig4", "fig5", "fig6"):
        header, rows = _table(out / f"{name}.csv")
        assert header == list(POINT_COLUMNS) and set(CONTRACT) | set(LIVE) <= set(header)
        modes = {r["mode"] for r in rows}
        assert modes == {"modelled", "live"}, (name, modes)
        live_ok = [r for r in rows if r["mode"] == "live" and r["status"] == "optimal"]
        assert live_ok, f"{name}: no live point ran"
        for r in live_ok:
            assert all(r[c] != "" for c in LIVE), (name, r)
            assert int(r["n_requests"]) <= 20
    doc = tmp_path / "results.md"
    figs = tmp_path / "figs"
    rep = _run("report", "--out", str(out), "--doc", str(doc), "--figures", str(figs), timeout=300)
    assert rep.returncode == 0, rep.stderr
    for png in ("fig3.png", "fig4-modelled.png", "fig4-live.png", "fig5-modelled.png", "fig5-live.png",
                "fig6-modelled.png", "fig6-live.png", "objectives.png", "prediction-error.png"):
        assert (figs / png).stat().st_size > 5000, png
    text = doc.read_text()
    assert "QUICK" in text and "fig4-live.png" in text
