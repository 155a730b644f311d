"""Records: fidelity against the unsplit reference, JSONL output and the summary table."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from device_agent.record import RequestRecord

STAGES = (
    ("device_compute_s", "device compute"),
    ("encode_s", "encode"),
    ("transfer_s", "transfer (uplink + downlink)"),
    ("server_other_s", "server decode + queue"),
    ("server_compute_s", "server compute"),
    ("e2e_s", "end-to-end"),
)


def add_fidelity(records: list[RequestRecord], reference: np.ndarray) -> None:
    """Attach cosine and l2 distance to the unpruned, unsplit model's embedding (same row order)."""
    for rec, ref in zip(records, reference, strict=True):
        emb = np.asarray(rec.embedding, dtype=np.float64)
        r = np.asarray(ref, dtype=np.float64)
        denom = float(np.linalg.norm(emb) * np.linalg.norm(r))
        rec.cosine = float(emb @ r / denom) if denom > 0 else 0.0
        rec.l2 = float(np.linalg.norm(emb - r))


def to_json(rec: RequestRecord) -> str:
    out = rec.to_dict()
    out["embedding"] = [float(x) for x in np.asarray(rec.embedding).ravel()]
    return json.dumps(out)


def write_jsonl(path: str | Path, records: Iterable[RequestRecord]) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(to_json(rec) + "\n")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def summarize(records: list[RequestRecord]) -> dict[str, Any]:
    stages = {}
    for key, _ in STAGES:
        vals = [getattr(r.timings, key) for r in records]
        stages[key] = {"median_s": percentile(vals, 50), "p95_s": percentile(vals, 95)}
    summary: dict[str, Any] = {"requests": len(records), "stages": stages}
    cos = [r.cosine for r in records if r.cosine is not None]
    if cos:
        l2 = [r.l2 for r in records if r.l2 is not None]
        summary["fidelity"] = {
            "cosine_mean": float(np.mean(cos)), "cosine_min": float(np.min(cos)),
            "l2_mean": float(np.mean(l2)), "l2_max": float(np.max(l2)),
        }
    return summary


def print_summary(records: list[RequestRecord], title: str, console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    summary = summarize(records)
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("median (ms)", justify="right")
    table.add_column("p95 (ms)", justify="right")
    for key, label in STAGES:
        st = summary["stages"][key]
        table.add_row(label, f"{st['median_s'] * 1e3:.2f}", f"{st['p95_s'] * 1e3:.2f}")
    console.print(table)
    payload = records[0].payload_bytes if records else 0
    console.print(f"{len(records)} requests; uplink payload {payload} bytes; timings measured with perf_counter")
    if "fidelity" in summary:
        f = summary["fidelity"]
        console.print(
            f"fidelity vs unpruned unsplit model: cosine mean {f['cosine_mean']:.5f} min {f['cosine_min']:.5f}; "
            f"l2 mean {f['l2_mean']:.4f} max {f['l2_max']:.4f}"
        )
    return summary


def version_rows(records: list[RequestRecord]) -> list[dict[str, Any]]:
    """Per config version: the plan's knobs, predicted vs measured median latency."""
    rows: dict[int, dict[str, Any]] = {}
    for r in records:
        row = rows.setdefault(r.config_version, {"version": r.config_version, "split": r.split, "rho": r.rho,
                                                 "rho_server": r.rho_server,
                                                 "predicted_s": r.predicted.latency_s if r.predicted else None,
                                                 "e2e": []})
        row["e2e"].append(r.timings.e2e_s)
    out = []
    for row in rows.values():
        e2e = row.pop("e2e")
        row["requests"] = len(e2e)
        row["measured_s"] = float(np.median(e2e))
        p = row["predicted_s"]
        row["error"] = (row["measured_s"] - p) / p if p else None
        out.append(row)
    return out


def print_versions(records: list[RequestRecord], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="per plan version: predicted (modelled, paper eqs. 4-11) vs measured (median e2e)")
    for col in ("version", "requests", "L", "rho", "rho~", "predicted (ms)", "measured (ms)", "error"):
        table.add_column(col, justify="right")
    for row in version_rows(records):
        p = row["predicted_s"]
        table.add_row(str(row["version"]), str(row["requests"]), str(row["split"]), f"{row['rho']:.3f}",
                      f"{row['rho_server']:.3f}", f"{p * 1e3:.1f}" if p else "-", f"{row['measured_s'] * 1e3:.1f}",
                      f"{row['error']:+.1%}" if row["error"] is not None else "-")
    console.print(table)
