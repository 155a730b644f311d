"""Run a sweep: fig3 rows, modelled points and live points, each appended to its CSV as it finishes."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.config import SweepConfig
from experiments.points import Point, live_fixed_split, live_points, modelled_points
from experiments.progress import console, tracker
from experiments.store import FIG3_COLUMNS, KEY_COLUMNS, POINT_COLUMNS, ResultFile, key_of, read_rows

if TYPE_CHECKING:
    from experiments.testbed import AttachTo

logger = logging.getLogger(__name__)


def run_sweep(cfg: SweepConfig, out: Path, *, mode: str, resume: bool, controller: AttachTo | None,
              quick: bool) -> None:
    t0 = time.perf_counter()
    if cfg.figure == "fig3":
        run_fig3(cfg, out, resume)
    else:
        modes = ("modelled", "live") if mode == "both" else (mode,)
        store = ResultFile(out / f"{cfg.name}.csv", POINT_COLUMNS, KEY_COLUMNS["point"])
        done = start_points(store, resume, modes)
        if "modelled" in modes:
            run_modelled(cfg, store, done)
        if "live" in modes:
            run_live(cfg, store, done, controller, out)
    seconds = time.perf_counter() - t0
    console.print(f"{cfg.name}: {seconds:.0f} s")
    record_run(out, cfg.name, quick=quick, mode=mode, seconds=seconds, resume=resume)


def record_run(out: Path, name: str, **info: Any) -> None:
    """out/manifest.json: how each sweep was last run (quick or full, mode, wall time)."""
    path = out / "manifest.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    info["finished"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    # How busy the host was: live latencies hold only while the host keeps up with the emulated clocks.
    info["load_avg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    if info.get("resume") and name in data:
        # A resumed sweep's wall time adds to the interrupted run's.
        info["seconds"] = float(info.get("seconds", 0.0)) + float(data[name].get("seconds", 0.0))
    data[name] = info
    path.write_text(json.dumps(data, indent=1))


def start_points(store: ResultFile, resume: bool, modes: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Resume keeps every row; otherwise rows of the modes being run are dropped and the others kept."""
    if resume or not store.path.exists():
        return store.start(resume=resume)
    keep = [r for r in read_rows(store.path) if r.get("mode") not in modes]
    store.start(resume=False)
    for r in keep:
        store.append({k: v for k, v in r.items() if k in store.columns})
    return set()


def run_fig3(cfg: SweepConfig, out: Path, resume: bool) -> None:
    from experiments import fig3

    store = ResultFile(out / f"{cfg.name}.csv", FIG3_COLUMNS, KEY_COLUMNS["fig3"])
    done = store.start(resume)
    jobs = list(fig3.jobs(cfg.fig3))
    todo = [j for j in jobs if key_of({"model": j[0], "method": j[1], "keep_ratio": j[2]}, store.key) not in done]
    with tracker(f"{cfg.name} (distortions)", len(jobs), len(jobs) - len(todo)) as tr:
        for label, method, rho, fn in todo:
            tr.note(f"{label} {method} keep {rho:g}")
            store.append(fn())
            tr.advance()


def run_modelled(cfg: SweepConfig, store: ResultFile, done: set[tuple[str, ...]]) -> None:
    from experiments.modelled import ModelledRunner

    runner = ModelledRunner(cfg.modelled.problem)
    points = modelled_points(cfg, runner.n_layers)
    todo = [p for p in points if key_of(p.row(), store.key) not in done]
    with tracker(f"{cfg.name} modelled", len(points), len(points) - len(todo)) as tr:
        for p in todo:
            store.append(runner.run(p))
            tr.advance()


def run_live(cfg: SweepConfig, store: ResultFile, done: set[tuple[str, ...]], controller: AttachTo | None,
             out: Path) -> None:
    from experiments import live as live_mod
    from experiments import retrieval

    lv = cfg.live
    flops, n_layers = live_mod.live_model_facts(lv)
    points = live_points(cfg, n_layers)
    todo = [p for p in points if key_of(p.row(), store.key) not in done]
    if not todo:
        return
    methods = sorted({p.method for p in todo})
    if controller and len(methods) > 1:
        from experiments.testbed import AttachMismatch

        raise AttachMismatch(f"{cfg.name} live runs the pruning methods {', '.join(methods)}, but an attached "
                             "controller pushes the one it was started with (--method): run one method per "
                             "controller with a sweep file (`--config`, live.methods: [METHOD])")
    if controller:
        _testbed(lv, prune_method(lv, methods[0]), controller, None)  # fail fast, before the model loads
    task = retrieval.build_task(lv.requests_per_point)
    console.print(f"{cfg.name} live: {lv.model} at {lv.seq_len} tokens = {flops / 1e9:.3f} GFLOPs; "
                  f"{len(task.texts)} requests per point; budgets scaled by {lv.budget_scale}")
    dense = live_mod.dense_embeddings(lv, task.texts)
    with tracker(f"{cfg.name} live", len(points), len(points) - len(todo)) as tr:
        for method in dict.fromkeys(p.method for p in todo):
            batch = [p for p in todo if p.method == method]
            _run_method(cfg, method, batch, store, task, dense, controller, tr, out, n_layers)


def prune_method(lv: Any, method: str) -> str:
    return f"{'structured' if lv.structured else 'unstructured'}-{method}"


def _run_method(cfg: SweepConfig, method: str, batch: list[Point], store: ResultFile, task: Any, dense: Any,
                controller: AttachTo | None, tr: Any, out: Path, n_layers: int) -> None:
    from experiments import measured
    from experiments.live import LiveRunner, budget_scales
    from experiments.modelled import load_base

    lv = cfg.live
    tb = _testbed(lv, prune_method(lv, method), controller, tr)
    try:
        runner = LiveRunner(tb, task, dense, tb.workdir)
        if controller:
            from experiments import attach

            # The driver's agent registers afresh (its profile is this sweep's), then the system is checked.
            attach.prepare(tb, lv, lambda: runner.ensure_device(force=True))
        else:
            runner.ensure_device()
        s_t, s_e, how = budget_scales(tb, lv, load_base(cfg.modelled.problem), live_fixed_split(cfg, n_layers),
                                      cfg.modelled.split)
        note = {"figure": cfg.name, "method": method, "prune_method": tb.method, "budget_scale": how,
                "latency_factor": s_t, "energy_factor": s_e, "model": lv.model, "seq_len": lv.seq_len,
                "encoding": lv.encoding, "device_clock_profile": lv.device_clock_profile,
                "server_clock_profile": lv.server_clock_profile, "requests_per_point": len(task.texts),
                "host_flops_override": tb.host_flops_override, "nodes": tb.get("/v1/nodes")}
        (out / f"{cfg.name}.live-{method}.json").write_text(json.dumps(note, indent=1, default=str))
        for p in (q.scaled(s_t, s_e) for q in batch):
            tr.note(f"{p.method} {p.scheme} {p.objective} L={p.split} T0={p.latency_budget_s * 1e3:.1f} ms "
                    f"E0={p.energy_budget_j * 1e3:.2f} mJ")
            if p.objective == "measured":
                pins, ans = measured.measured_pins(tb, p, lv)
                if pins is None:
                    row = p.row()
                    row.update({"status": ans.get("status", "error"), "min_latency_s": ans.get("min_latency_s"),
                                "min_energy_j": ans.get("min_energy_j")})
                else:
                    row = runner.run(p, measured_pins=pins)
            else:
                row = runner.run(p)
            store.append(row)
            tr.advance()
    except BaseException:
        close_testbeds()  # a testbed in an unknown state is not reused
        raise


# One controller + edge server per (pruning method, live settings), shared by the figures of one run.
_TESTBEDS: dict[tuple[str, str, str], Any] = {}


def _testbed(lv: Any, method: str, controller: AttachTo | None, tr: Any) -> Any:
    from experiments.testbed import Testbed

    spec = lv.model_dump_json(include={"model", "seq_len", "encoding", "structured", "device_clock_profile",
                                       "server_clock_profile", "link", "rho_min"})
    key = (method, spec, controller.url if controller else "")
    tb = _TESTBEDS.get(key)
    if tb is not None:
        return tb
    close_testbeds()  # one at a time: two edge servers would fight over the 2 cores
    tb = Testbed(lv, method)
    if controller:
        tb.attach(controller)
    else:
        tr.note(f"starting controller + edge server ({method})")
        tb.start()
    _TESTBEDS[key] = tb
    return tb


def close_testbeds() -> None:
    while _TESTBEDS:
        _, tb = _TESTBEDS.popitem()
        tb.stop()
