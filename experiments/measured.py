"""Beyond the paper: the controller's measured-distortion objective instead of the parameter-count bound.

Per side and split, the output distortion of the live model is measured here as fig3 does it (structured
magnitude masks on the dense model, mean squared error of the embedding over fixed inputs) with only that
side's layers pruned. The points go to the controller's stateless `POST /v1/solve` with
`"objective": "measured"` on the live system's problem (built from `GET /v1/nodes` and the model's split
table); the chosen split and kept ratios are then pinned on the live controller (`PUT /v1/pins`), which
re-optimises power and clocks for them under the same budget.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from experiments import fig3
from experiments.config import LiveSpec
from experiments.points import Point
from experiments.testbed import Testbed

RATIOS = (0.3, 0.5, 0.7, 0.85, 1.0)


@functools.lru_cache(maxsize=16)
def _dense(model: str, n: int) -> tuple[Any, Any, torch.Tensor, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    from splitbed.model import load_full_model, resolve_model

    src = resolve_model(model)
    full = load_full_model(src)
    inputs = fig3.bert_inputs(src, n)
    weights = {k: v for k, v in load_file(str(src.weights_path)).items() if "encoder.layer." in k}
    return full, inputs, fig3.embed(full, inputs), weights


@functools.lru_cache(maxsize=64)
def side_points(model: str, split: int, n_inputs: int = 16) -> dict[str, list[list[float]]]:
    """{"device": [[rho, d], ...], "server": [...]}: embedding MSE with only that side pruned."""
    full, inputs, y, weights = _dense(model, n_inputs)
    n_layers = full.source.n_layers
    out: dict[str, list[list[float]]] = {"device": [], "server": []}
    for side, layers in (("device", range(0, split)), ("server", range(split, n_layers))):
        if len(layers) == 0:
            continue
        for rho in RATIOS:
            fig3.restore(full, weights)
            fig3.prune_bert(full, layers, "structured-magnitude", rho)
            y_hat = fig3.embed(full, inputs)
            out[side].append([rho, float((y - y_hat).double().square().sum(1).mean())])
    fig3.restore(full, weights)
    return out


def live_problem(tb: Testbed, point: Point, lv: LiveSpec) -> dict[str, Any]:
    """The live system's P1 as the controller builds it, with the measured objective."""
    from experiments.live import problem_from_nodes

    problem = problem_from_nodes(tb, lv, point.split, point.latency_budget_s, point.energy_budget_j)
    pts = side_points(lv.model, point.split)
    problem["objective"] = "measured"
    problem["distortion_points"] = {"device": pts["device"], "server": pts["server"]}
    return problem


def measured_pins(tb: Testbed, point: Point, lv: LiveSpec) -> tuple[dict[str, float] | None, dict[str, Any]]:
    """(pins for the live controller, the stateless answer); pins None when the measured problem is infeasible."""
    code, ans = tb.post("/v1/solve", live_problem(tb, point, lv))
    if code != 200 or ans.get("status") != "optimal":
        return None, ans

    def clamp(v: float) -> float:
        return min(1.0, max(lv.rho_min, float(v)))

    return {"split": point.split, "rho_device": clamp(ans["rho_device"]), "rho_server": clamp(ans["rho_server"])}, ans


