"""Modelled points: the controller's own solver on the paper's problem JSON, one solve per point.

`point_problem` is the exact JSON a user would hand to `controller solve --params FILE --scheme S`; the tests
check that every row here equals that command's answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controller.planner import Planner
from controller.problem import Answer, Problem
from experiments.config import ROOT
from experiments.points import Point


def load_base(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_absolute():
        p = ROOT / p
    data: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    return data


def point_problem(base: dict[str, Any], point: Point) -> dict[str, Any]:
    """The problem JSON of one point: the base problem with the point's budget and pinned split."""
    problem = json.loads(json.dumps(base))
    problem["budget"] = {"latency_s": point.latency_budget_s, "energy_j": point.energy_budget_j}
    problem["pins"] = {**(problem.get("pins") or {}), "split": point.split}
    return problem


def kept_fraction(problem: Problem, answer: Answer) -> float | None:
    if answer.status != "optimal" or answer.kept_params is None:
        return None
    spec = next(s for s in problem.splits if s.split == answer.split)
    return answer.kept_params / (spec.device_params + spec.server_params)


def answer_row(problem: Problem, answer: Answer) -> dict[str, Any]:
    """The solver's answer in the CSV contract's columns."""
    return {
        "status": answer.status,
        "rho_device": answer.rho_device, "rho_server": answer.rho_server, "power_w": answer.power_w,
        "freq_device_hz": answer.freq_device_hz, "freq_server_hz": answer.freq_server_hz,
        "predicted_latency_s": answer.latency_s, "predicted_energy_j": answer.energy_j,
        "log2_distortion_bound": answer.log2_distortion_bound, "kept_fraction": kept_fraction(problem, answer),
        "min_latency_s": answer.min_latency_s, "min_energy_j": answer.min_energy_j,
    }


class ModelledRunner:
    """Solves modelled points exactly as `controller solve` does: a fresh planner per point.

    A warm planner would reuse compiled programs across points and answer within solver tolerance (~1e-7
    relative) of a cold solve; a fresh one costs ~20 ms per point and gives the CLI's answer bit for bit.
    """

    def __init__(self, problem_path: str) -> None:
        self.base = load_base(problem_path)

    @property
    def n_layers(self) -> int:
        return int(self.base.get("n_layers") or max(s["split"] for s in self.base["splits"]))

    def run(self, point: Point) -> dict[str, Any]:
        problem = Problem.model_validate(point_problem(self.base, point))
        answer = Planner().solve(problem, solver="exact", scheme=point.scheme)
        row = point.row()
        row.update(answer_row(problem, answer))
        return row
