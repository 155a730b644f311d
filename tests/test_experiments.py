"""experiments: modelled points equal `controller solve`, joint dominates the benchmarks, infeasible points
carry their minimal budgets, `--resume` after SIGKILL repeats no finished point, the sweep file shows every key."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from controller.planner import Planner
from controller.problem import Problem
from experiments import retrieval
from experiments.config import SweepConfig, builtin
from experiments.modelled import ModelledRunner, load_base, point_problem
from experiments.points import Point, modelled_points
from experiments.store import KEY_COLUMNS, POINT_COLUMNS, key_of

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("fixed-power", "fixed-clocks", "prune-device-only", "prune-server-only")
COMPARED = ("status", "rho_device", "rho_server", "power_w", "freq_device_hz", "freq_server_hz",
            "predicted_latency_s", "predicted_energy_j", "log2_distortion_bound", "min_latency_s", "min_energy_j")
ANSWER_KEY = {"predicted_latency_s": "latency_s", "predicted_energy_j": "energy_j"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "experiments", *args], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _close(a: str, b: object) -> bool:
    if b is None:
        return a == ""
    if isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)  # type: ignore[arg-type]


@pytest.mark.slow
def test_modelled_points_equal_controller_solve(tmp_path: Path) -> None:
    """The CLI's modelled rows are what `controller solve --params FILE --scheme S --json` answers."""
    out = tmp_path / "res"
    run = _cli("run", "fig4", "--quick", "--mode", "modelled", "--out", str(out))
    assert run.returncode == 0, run.stderr
    rows = _rows(out / "fig4.csv")
    assert len(rows) == 2 * 7 * 3
    base = load_base("examples/paper.json")
    # One row per (scheme, status) pair: every scheme, optimal and infeasible answers, both panels.
    sample = list({(r["scheme"], r["status"], r["method"]): r for r in rows}.values())
    assert {r["status"] for r in sample} == {"optimal", "infeasible"}
    for row in sample:
        point = Point(row["figure"], row["mode"], row["model"], row["method"], row["scheme"], row["objective"],
                      int(row["split"]), float(row["latency_budget_s"]), float(row["energy_budget_j"]),
                      float(row["paper_latency_budget_s"]), float(row["paper_energy_budget_j"]))
        params = tmp_path / "p.json"
        params.write_text(json.dumps(point_problem(base, point)))
        solved = subprocess.run([sys.executable, "-m", "controller", "solve", "--params", str(params), "--scheme",
                                 row["scheme"], "--json"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                                timeout=120, check=False)
        answer = json.loads(solved.stdout)
        for col in COMPARED:
            assert _close(row[col], answer[ANSWER_KEY.get(col, col)]), (row["scheme"], col, row[col], answer)
        assert int(row["split"]) == answer["split"]


def _solve_all(cfg: SweepConfig) -> list[dict[str, object]]:
    runner = ModelledRunner(cfg.modelled.problem)
    return [runner.run(p) for p in modelled_points(cfg, runner.n_layers)]


@pytest.mark.slow
@pytest.mark.parametrize("figure", ["fig4", "fig5"])
def test_joint_never_worse_than_a_benchmark(figure: str) -> None:
    cfg = builtin(figure, quick=False)
    rows = _solve_all(cfg)
    joint = {(r["method"], r["latency_budget_s"], r["energy_budget_j"]): r for r in rows if r["scheme"] == "joint"}
    compared = 0
    for r in rows:
        if r["scheme"] not in BENCHMARKS or r["status"] != "optimal":
            continue
        j = joint[(r["method"], r["latency_budget_s"], r["energy_budget_j"])]
        assert j["status"] == "optimal", (r, j)
        assert j["kept_fraction"] >= r["kept_fraction"] - 1e-6, (r["scheme"], j["kept_fraction"], r["kept_fraction"])
        compared += 1
    assert compared >= 5
    # With the split free, joint also covers on-device and on-server.
    base = load_base(cfg.modelled.problem)
    planner = Planner()
    for r in rows:
        if r["scheme"] not in ("on-device", "on-server") or r["status"] != "optimal":
            continue
        problem = dict(base, budget={"latency_s": r["latency_budget_s"], "energy_j": r["energy_budget_j"]})
        free = planner.solve(Problem.model_validate(problem), scheme="joint")
        assert free.status == "optimal"
        assert free.log2_distortion_bound <= r["log2_distortion_bound"] + 1e-6  # type: ignore[operator]


def test_infeasible_point_reports_its_minimal_budget() -> None:
    runner = ModelledRunner("examples/paper.json")
    point = Point("fig4", "modelled", "bert-base", "magnitude", "joint", "bound", 4, 0.1, 0.015, 0.1, 0.015)
    row = runner.run(point)
    assert row["status"] == "infeasible"
    t_min = row["min_latency_s"]
    assert isinstance(t_min, float) and 0.1 < t_min < 1.0
    above = runner.run(Point(*[*point.row().values()][:7], t_min * 1.01, 0.015, t_min * 1.01, 0.015))
    below = runner.run(Point(*[*point.row().values()][:7], t_min * 0.98, 0.015, t_min * 0.98, 0.015))
    assert above["status"] == "optimal" and below["status"] == "infeasible"
    # Energy-bound infeasibility: fixed power at P_max spends more upload energy than E0 at any T0.
    fp = runner.run(Point("fig4", "modelled", "bert-base", "magnitude", "fixed-power", "bound", 4, 0.5, 0.015,
                          0.5, 0.015))
    assert fp["status"] == "infeasible" and fp["min_latency_s"] is None
    assert isinstance(fp["min_energy_j"], float) and fp["min_energy_j"] > 0.015


def _big_sweep(path: Path) -> Path:
    grid = [round(0.1 + 0.002 * i, 4) for i in range(300)]
    cfg = {"name": "big", "figure": "fig4", "schemes": ["joint", "fixed-clocks", "on-device"],
           "methods": [{"name": "magnitude", "energy_j": 0.015}], "modelled": {"latency_grid_s": grid}}
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.slow
def test_resume_after_kill_repeats_no_finished_point(tmp_path: Path) -> None:
    cfg_file = _big_sweep(tmp_path / "big.json")
    out = tmp_path / "res"
    csv_path = out / "big.csv"
    proc = subprocess.Popen([sys.executable, "-m", "experiments", "run", "--config", str(cfg_file), "--mode",
                             "modelled", "--out", str(out)], cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if csv_path.exists() and csv_path.read_text().count("\n") > 40:
            break
        assert proc.poll() is None, "the sweep finished before it could be killed: make it bigger"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = csv_path.read_bytes()
    complete = before[: before.rfind(b"\n") + 1]
    done_before = _rows_from_bytes(complete)
    assert 40 <= len(done_before) < 900
    run = _cli("run", "--config", str(cfg_file), "--mode", "modelled", "--out", str(out), "--resume")
    assert run.returncode == 0, run.stderr
    after = csv_path.read_bytes()
    assert after.startswith(complete), "finished rows were rewritten"
    rows = _rows(csv_path)
    keys = [key_of(r, KEY_COLUMNS["point"]) for r in rows]
    assert len(keys) == len(set(keys)) == 900, "a point was repeated or lost"
    assert list(rows[0]) == list(POINT_COLUMNS)


def _rows_from_bytes(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(data.decode().splitlines()))


def _keys(node: object, prefix: str = "") -> set[str]:
    if isinstance(node, dict):
        out = set()
        for k, v in node.items():
            out.add(prefix + k)
            if k != "methods":
                out |= _keys(v, prefix + k + ".")
        return out
    return set()


def _model_keys(model: type, prefix: str = "") -> set[str]:
    out = set()
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        out.add(prefix + name)
        ann = field.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            out |= _model_keys(ann, prefix + name + ".")
    return out


def test_example_sweep_shows_every_key() -> None:
    raw = yaml.safe_load((ROOT / "examples/sweep.yaml").read_text())
    SweepConfig.model_validate(raw)
    assert _keys(raw) == _model_keys(SweepConfig)
    assert set(raw["methods"][0]) | set(raw["methods"][1]) == {"name", "latency_s", "energy_j"}


def test_retrieval_task_and_scores() -> None:
    task = retrieval.build_task(50)
    assert len(task.documents) == len(task.queries) == 25
    assert len(set(task.documents)) == 25
    for doc, query in zip(task.documents, task.queries, strict=True):
        assert query not in doc
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(50, 8))
    same = retrieval.scores(dense, dense, 25)
    assert same["retrieval_top1_agreement"] == same["retrieval_top5_agreement"] == 1.0
    noisy = retrieval.scores(dense + rng.normal(scale=5.0, size=dense.shape), dense, 25)
    assert noisy["retrieval_top1_agreement"] < 1.0
