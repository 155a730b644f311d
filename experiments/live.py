"""Live points: the real controller, edge server and device agent, steered per point through REST.

Per point: the scheme's knobs and the split are pinned (`PUT /v1/pins`), the budget set (`PUT /v1/budget`;
a 409 there means the point is infeasible and carries the minimal feasible budgets), the edge server is
waited on until `/v1/nodes` shows it applied the plan's version, then one `device-agent run` registers,
applies that same version and runs the retrieval task; its JSONL records (each naming the config version it
was served with) give the measured latency, energy, and the embeddings scored against the dense model.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from experiments import retrieval
from experiments.config import LiveSpec
from experiments.points import Point
from experiments.testbed import HUGE_ENERGY_J, HUGE_LATENCY_S, Testbed

logger = logging.getLogger(__name__)


def live_model_facts(lv: LiveSpec) -> tuple[float, int]:
    """(total FLOPs of the live model at its sequence length, its layer count), from its config."""
    from splitbed.model import resolve_model, split_table

    src = resolve_model(lv.model)
    table = split_table(src, lv.seq_len)
    return float(table[0].server_flops), src.n_layers


def total_prunable(lv: LiveSpec) -> float:
    """q + s: the model's prunable parameters (the same at every split)."""
    from splitbed.model import resolve_model, split_table

    t = split_table(resolve_model(lv.model), lv.seq_len)[0]
    return float(t.device_prunable + t.server_prunable)


def budget_scale(lv: LiveSpec) -> float:
    """Live budget = paper budget x (live model FLOPs / paper model FLOPs) when budget_scale is 'flops'."""
    if lv.budget_scale == "none":
        return 1.0
    flops, _ = live_model_facts(lv)
    return flops / lv.paper_flops


def dense_embeddings(lv: LiveSpec, texts: list[str]) -> np.ndarray:
    """The unpruned, unsplit model on the same inputs as the agent (same tokenizer, same padding)."""
    import torch

    from experiments.fig3 import embed
    from splitbed.model import load_full_model, load_tokenizer, resolve_model, tokenize

    src = resolve_model(lv.model)
    torch.set_num_threads(1)
    inputs = tokenize(load_tokenizer(src), texts, max_seq_len=src.max_seq_len, pad_to=lv.seq_len)
    return embed(load_full_model(src), inputs).numpy().astype(np.float64)


def scheme_pins(tb: Testbed, scheme: str, split: int) -> dict[str, float]:
    """The paper's benchmarks as pins on the live controller (the same knobs `controller.schemes` fixes)."""
    pins: dict[str, float] = {"split": split}
    if scheme == "fixed-power":
        pins["power_w"] = tb.live.link.p_max_w
    elif scheme == "fixed-clocks":
        dev, srv = tb.nodes("device")[0], tb.nodes("server")[0]
        pins["freq_device_hz"] = float(dev["profile"]["compute"]["f_max_hz"])
        pins["freq_server_hz"] = float(srv["profile"]["compute"]["f_max_hz"])
    elif scheme == "prune-device-only":
        pins["rho_server"] = 1.0
    elif scheme == "prune-server-only":
        pins["rho_device"] = 1.0
    elif scheme not in ("joint", "on-device", "on-server"):
        raise ValueError(f"unknown scheme {scheme!r}")
    return pins


def set_point(tb: Testbed, pins: dict[str, float], t0: float, e0: float) -> tuple[str, dict[str, Any]]:
    """Pins then budget through REST; ('optimal', plan) or ('infeasible', the 409 answer)."""
    code, body = tb.put("/v1/pins", pins)
    if code == 409:
        # The pins may be infeasible only under the previous point's budget: loosen it, pin, then tighten.
        code, body = tb.put("/v1/budget", {"latency_s": HUGE_LATENCY_S, "energy_j": HUGE_ENERGY_J})
        code, body = tb.put("/v1/pins", pins)
        if code != 200:
            return "infeasible", body.get("answer") or {}
    code, body = tb.put("/v1/budget", {"latency_s": t0, "energy_j": e0})
    if code == 409:
        return "infeasible", body.get("answer") or {}
    if code != 200:
        raise RuntimeError(f"PUT /v1/budget -> {code}: {body}")
    return "optimal", body


def _rel(measured: float, predicted: float | None) -> float | None:
    if predicted is None or not predicted or math.isnan(measured):
        return None
    return (measured - predicted) / predicted


def measure(records: list[dict[str, Any]], version: int, task: retrieval.Task, dense: np.ndarray) -> dict[str, Any]:
    """The point's measured figures from the agent's records of plan `version`."""
    recs = [r for r in records if r["config_version"] == version]
    if len(recs) != len(records):
        raise RuntimeError(f"{len(records) - len(recs)} records were served with another plan than v{version}")
    lat = [r["timings"]["e2e_s"] for r in recs]
    energies = [sum(v for k, v in r.get("energy", {}).items() if k.endswith("_j")) for r in recs]
    sources = sorted({f"{k.removesuffix('_source')}={v}" for r in recs[:1] for k, v in r.get("energy", {}).items()
                      if k.endswith("_source")})
    emb = np.asarray([r["embedding"] for r in recs], dtype=np.float64)
    pred = recs[0].get("predicted") or {}
    med_lat = statistics.median(lat)
    med_e = statistics.median(energies) if energies else math.nan
    row: dict[str, Any] = {
        "measured_latency_s": med_lat, "measured_latency_p95_s": float(np.percentile(lat, 95)),
        "measured_energy_j": med_e, "cosine_mean": retrieval.cosine_mean(emb, dense), "n_requests": len(recs),
        "prediction_error": _rel(med_lat, pred.get("latency_s")),
        "energy_prediction_error": _rel(med_e, pred.get("energy_j")),
        "energy_source": "; ".join(sources),
    }
    sc = retrieval.scores(emb, dense, len(task.documents))
    sc.pop("dense_recall_at1")
    row.update(sc)
    return row


def plan_row(plan: dict[str, Any], total_prunable: float) -> dict[str, Any]:
    ans = plan["answer"]
    kept = ans.get("kept_params")
    return {
        "status": ans["status"], "rho_device": ans["rho_device"], "rho_server": ans["rho_server"],
        "power_w": ans["power_w"], "freq_device_hz": ans["freq_device_hz"], "freq_server_hz": ans["freq_server_hz"],
        "predicted_latency_s": ans["latency_s"], "predicted_energy_j": ans["energy_j"],
        "log2_distortion_bound": ans["log2_distortion_bound"], "plan_version": plan["version"],
        "kept_fraction": None if kept is None else kept / total_prunable,
    }


class LiveRunner:
    """Runs live points on one testbed (one pruning method: the controller pushes it with every plan)."""

    def __init__(self, tb: Testbed, task: retrieval.Task, dense: np.ndarray, workdir: Path) -> None:
        self.tb = tb
        self.task = task
        self.dense = dense
        self.workdir = workdir
        self.texts = workdir / "texts.txt"
        self.texts.write_text("\n".join(t.replace("\n", " ") for t in task.texts) + "\n", encoding="utf-8")
        self.n = 0
        self.total_prunable = total_prunable(tb.live)

    def ensure_device(self) -> None:
        """The controller plans only once an agent has registered: the first run registers one."""
        if not self.tb.nodes("device"):
            warm = self.workdir / "texts-warm.txt"
            warm.write_text(self.task.texts[0].replace("\n", " ") + "\n", encoding="utf-8")
            self.tb.run_agent(warm, self.workdir / "warm.jsonl")

    def run(self, point: Point, measured_pins: dict[str, float] | None = None) -> dict[str, Any]:
        self.ensure_device()
        row = point.row()
        pins = measured_pins if measured_pins is not None else scheme_pins(self.tb, point.scheme, point.split)
        status, body = set_point(self.tb, pins, point.latency_budget_s, point.energy_budget_j)
        if status != "optimal":
            row.update({"status": "infeasible", "min_latency_s": body.get("min_latency_s"),
                        "min_energy_j": body.get("min_energy_j")})
            return row
        version = int(body["version"])
        self.tb.wait_server_applied(version)
        row.update(plan_row(body, self.total_prunable))
        self.n += 1
        out = self.workdir / f"point-{self.n}.jsonl"
        self.tb.run_agent(self.texts, out)
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
        row.update(measure(records, version, self.task, self.dense))
        dev = self.tb.nodes("device")[0]
        applied = dev.get("applied") or {}
        row.update({"applied_rho_device": applied.get("rho_device"),
                    "applied_freq_device_hz": applied.get("freq_device_hz"),
                    "applied_power_w": applied.get("power_w")})
        return row
