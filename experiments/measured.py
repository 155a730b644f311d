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
    from splitbed.model import payload_bytes, resolve_model, split_table

    dev, srv = tb.nodes("device")[0]["profile"], tb.nodes("server")[0]["profile"]
    src = resolve_model(lv.model)

    def proc(p: dict[str, Any]) -> dict[str, float]:
        c = p["compute"]
        return {"f_max_hz": c["f_max_hz"], "f_min_hz": min(c.get("f_min_hz", 0.0), c["f_max_hz"]),
                "flops_per_cycle": c["flops_per_cycle"], "pue": c.get("pue") or 1.0,
                "power_coeff": c.get("power_coeff") or 1e-28}

    link = dev["link"]
    t = next(s for s in split_table(src, lv.seq_len) if s.split == point.split)
    pts = side_points(lv.model, point.split)
    return {
        "device": proc(dev), "server": proc(srv),
        "link": {"bandwidth_hz": link["bandwidth_hz"], "noise_psd_w_per_hz": link["noise_psd_w_per_hz"],
                 "gain": link["gain"], "p_max_w": link["p_max_w"]},
        "budget": {"latency_s": point.latency_budget_s, "energy_j": point.energy_budget_j},
        "n_layers": src.n_layers, "rho_min_device": lv.rho_min, "rho_min_server": lv.rho_min,
        "splits": [{"split": t.split, "device_flops": float(t.device_flops), "server_flops": float(t.server_flops),
                    "device_params": float(t.device_prunable), "server_params": float(t.server_prunable),
                    "payload_bits": 8.0 * payload_bytes(src.hidden_size, lv.seq_len, lv.encoding)}],
        "objective": "measured",
        "distortion_points": {"device": pts["device"], "server": pts["server"]},
    }


def measured_pins(tb: Testbed, point: Point, lv: LiveSpec) -> tuple[dict[str, float] | None, dict[str, Any]]:
    """(pins for the live controller, the stateless answer); pins None when the measured problem is infeasible."""
    code, ans = tb.post("/v1/solve", live_problem(tb, point, lv))
    if code != 200 or ans.get("status") != "optimal":
        return None, ans

    def clamp(v: float) -> float:
        return min(1.0, max(lv.rho_min, float(v)))

    return {"split": point.split, "rho_device": clamp(ans["rho_device"]), "rho_server": clamp(ans["rho_server"])}, ans


