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
from experiments.testbed import DEVICE_ID, HUGE_ENERGY_J, HUGE_LATENCY_S, Testbed

logger = logging.getLogger(__name__)
# "Unbounded" for the minimal-budget solves: loose enough never to bind, tight enough for the conic solver.
LOOSE_LATENCY_S = 10.0
LOOSE_ENERGY_J = 1.0


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


def problem_from_nodes(tb: Testbed, lv: LiveSpec, split: int, t0: float, e0: float) -> dict[str, Any]:
    """The live system's P1 (bound objective) for one split, built by the controller's own
    `problem_dict` from the profiles `GET /v1/nodes` shows (which leave out the split table: it comes
    from the model, as the device computes it)."""
    from google.protobuf.json_format import ParseDict

    from controller.live_problem import problem_dict
    from controller.settings import ControllerSettings
    from splitbed.model import resolve_model
    from splitbed.side.profile import split_costs
    from splitbed.v1 import control_pb2

    def profile(node: dict[str, Any]) -> control_pb2.NodeProfile:
        return ParseDict(node["profile"], control_pb2.NodeProfile(), ignore_unknown_fields=True)

    dev, srv = profile(tb.device()), profile(tb.server())
    del dev.splits[:]
    dev.splits.extend(split_costs(resolve_model(lv.model), lv.seq_len, lv.encoding))
    settings = ControllerSettings.model_validate({"rho_min_device": lv.rho_min, "rho_min_server": lv.rho_min})
    problem = problem_dict(dev, srv, settings, latency_s=t0, energy_j=e0)
    problem["splits"] = [s for s in problem["splits"] if s["split"] == split]
    return problem


def _minimal_budgets(tb: Testbed, problem: dict[str, Any]) -> tuple[float, float]:
    """(smallest feasible T0 with E0 unbounded, smallest feasible E0 with T0 unbounded), joint scheme."""
    out = []
    # Not 1e-9: Clarabel fails on budgets that far apart (the controller scales by T0 and E0).
    for budget, key in (({"latency_s": 1e-4, "energy_j": LOOSE_ENERGY_J}, "min_latency_s"),
                        ({"latency_s": LOOSE_LATENCY_S, "energy_j": 1e-5}, "min_energy_j")):
        code, ans = tb.post("/v1/solve", {**problem, "budget": budget})
        if code != 200 or ans.get(key) is None:
            (tb.workdir / "failed-problem.json").write_text(json.dumps({**problem, "budget": budget}, indent=1))
            raise RuntimeError(f"POST /v1/solve gave no {key} (problem in {tb.workdir}/failed-problem.json): "
                               f"{code} {str(ans)[:300]}")
        out.append(float(ans[key]))
    return out[0], out[1]


def budget_scales(tb: Testbed, lv: LiveSpec, paper_problem: dict[str, Any], split: int,
                  paper_split: int) -> tuple[float, float, str]:
    """(latency factor, energy factor, how) turning paper budgets into live ones.

    - flops: both x (live model FLOPs / paper model FLOPs);
    - min-budget: T0 x (live T0_min / paper T0_min) and E0 x (live E0_min / paper E0_min), the minima of the
      joint scheme at the fixed split with the other budget unbounded, so a budget k times the paper's
      minimum is k times the live minimum;
    - none: as given.
    """
    if lv.budget_scale == "none":
        return 1.0, 1.0, "none: live budgets = the paper's"
    flops, _ = live_model_facts(lv)
    if lv.budget_scale == "flops":
        s = flops / lv.paper_flops
        return s, s, f"flops: x {s:.4g} = {flops / 1e9:.3f} GFLOPs / {lv.paper_flops / 1e9:.2f} GFLOPs"
    t_live, e_live = _minimal_budgets(tb, problem_from_nodes(tb, lv, split, 1.0, 1.0))
    paper = json.loads(json.dumps(paper_problem))
    paper["pins"] = {**(paper.get("pins") or {}), "split": paper_split}
    t_paper, e_paper = _minimal_budgets(tb, paper)
    return (t_live / t_paper, e_live / e_paper,
            f"min-budget: T0 x {t_live / t_paper:.4g} ({t_live * 1e3:.2f} / {t_paper * 1e3:.2f} ms), "
            f"E0 x {e_live / e_paper:.4g} ({e_live * 1e3:.3f} / {e_paper * 1e3:.3f} mJ), joint at split "
            f"{split} (live) / {paper_split} (paper)")


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
        dev, srv = tb.device(), tb.server()
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
    """Pins then budget through REST; ('optimal', plan) or (the solver's status, its answer) when the controller
    refused the point. A refusal without a solver's answer (no live device or server, profiles that make no
    problem, pins outside the system) is no property of the point: it is raised, naming the controller's reason."""
    code, body = tb.put("/v1/pins", pins)
    if code == 409 and _answer(code, body, "PUT /v1/pins"):
        # The pins may be infeasible only under the previous point's budget: loosen it, pin, then tighten.
        code, body = tb.put("/v1/budget", {"latency_s": HUGE_LATENCY_S, "energy_j": HUGE_ENERGY_J})
        _answer(code, body, "PUT /v1/budget")
        code, body = tb.put("/v1/pins", pins)
        if code != 200:
            ans = _answer(code, body, "PUT /v1/pins")
            return str(ans.get("status") or "infeasible"), ans
    elif code != 200:
        raise RuntimeError(f"PUT /v1/pins {pins} -> {code}: {body}")
    code, body = tb.put("/v1/budget", {"latency_s": t0, "energy_j": e0})
    if code == 409:
        ans = _answer(code, body, "PUT /v1/budget")
        return str(ans.get("status") or "infeasible"), ans
    if code != 200:
        raise RuntimeError(f"PUT /v1/budget -> {code}: {body}")
    return "optimal", body


def _answer(code: int, body: dict[str, Any], what: str) -> dict[str, Any]:
    """The solver's answer a 409 carries; a 409 without one is the controller unable to plan at all."""
    ans = body.get("answer") if isinstance(body, dict) else None
    if code == 409 and not ans:
        raise RuntimeError(f"{what} -> 409 without a solver answer, so the controller cannot plan at all: "
                           f"{body.get('detail') if isinstance(body, dict) else body}")
    return ans or {}


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

    def ensure_device(self, force: bool = False) -> None:
        """The controller plans only once an agent has registered (and not gone stale): a short run registers
        the driver's agent (`force`: even if one is listed, so that its profile is this sweep's)."""
        if force or not any(n["node_id"] == DEVICE_ID for n in self.tb.nodes("device")):
            warm = self.workdir / "texts-warm.txt"
            warm.write_text(self.task.texts[0].replace("\n", " ") + "\n", encoding="utf-8")
            self.tb.run_agent(warm, self.workdir / "warm.jsonl")

    def replanned_version(self, records: list[dict[str, Any]], version: int, row: dict[str, Any]) -> int:
        """The plan the agent really ran under: registering re-measures its profile, and a changed profile makes
        the controller re-plan the same point (same pins and budget) under a newer version."""
        ran = {int(r["config_version"]) for r in records}
        if len(ran) == 1 and ran != {version}:
            plan = self.tb.get("/v1/plan")
            if int(plan["version"]) == next(iter(ran)):
                row.update(plan_row(plan, self.total_prunable))
                return int(plan["version"])
        return version

    def run(self, point: Point, measured_pins: dict[str, float] | None = None) -> dict[str, Any]:
        self.ensure_device()
        row = point.row()
        pins = measured_pins if measured_pins is not None else scheme_pins(self.tb, point.scheme, point.split)
        status, body = set_point(self.tb, pins, point.latency_budget_s, point.energy_budget_j)
        if status != "optimal":
            row.update({"status": status, "min_latency_s": body.get("min_latency_s"),
                        "min_energy_j": body.get("min_energy_j")})
            return row
        version = int(body["version"])
        self.tb.wait_server_applied(version)
        row.update(plan_row(body, self.total_prunable))
        self.n += 1
        out = self.workdir / f"point-{self.n}.jsonl"
        self.tb.run_agent(self.texts, out)
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
        version = self.replanned_version(records, version, row)
        row.update(measure(records, version, self.task, self.dense))
        dev = self.tb.device()
        applied = dev.get("applied") or {}
        row.update({"applied_rho_device": applied.get("rho_device"),
                    "applied_freq_device_hz": applied.get("freq_device_hz"),
                    "applied_power_w": applied.get("power_w")})
        return row
