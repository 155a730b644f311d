"""Result CSVs: one row per point, appended and flushed the moment the point finishes.

A crash loses at most the point that was running; `done_keys` tells a resumed run which points to skip.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# The contract for fig4/5/6 (units in the names), then what this package adds.
POINT_COLUMNS: tuple[str, ...] = (
    "figure", "mode", "model", "method", "scheme", "objective", "split", "latency_budget_s", "energy_budget_j",
    "status", "rho_device", "rho_server", "power_w", "freq_device_hz", "freq_server_hz", "predicted_latency_s",
    "predicted_energy_j", "log2_distortion_bound", "kept_fraction", "min_latency_s", "min_energy_j",
    # live only
    "measured_latency_s", "measured_latency_p95_s", "measured_energy_j", "cosine_mean", "retrieval_top1_agreement",
    "retrieval_top5_agreement", "retrieval_recall_at1", "n_requests", "prediction_error",
    "energy_prediction_error", "applied_rho_device", "applied_freq_device_hz", "applied_power_w", "plan_version",
    "paper_latency_budget_s", "paper_energy_budget_j", "energy_source",
)
FIG3_COLUMNS: tuple[str, ...] = (
    "model", "method", "keep_ratio", "output_distortion", "parameter_distortion", "achieved_keep_ratio",
    "output_mse", "parameter_sq_error", "n_inputs",
)
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    # Budgets in the paper's units: live budgets are scaled at run time from measured profiles.
    "point": ("figure", "mode", "model", "method", "scheme", "objective", "split", "paper_latency_budget_s",
              "paper_energy_budget_j"),
    "fig3": ("model", "method", "keep_ratio"),
}


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def key_of(row: dict[str, Any], columns: Sequence[str]) -> tuple[str, ...]:
    """The identity of a point; floats are compared at 9 significant digits so CSV round trips match."""
    out = []
    for col in columns:
        value = row.get(col)
        if isinstance(value, float) or (isinstance(value, str) and _is_float(value)):
            out.append(f"{float(value):.9g}")
        else:
            out.append(_fmt(value))
    return tuple(out)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return any(c in text for c in ".eE") and text.lower() not in ("nan", "inf")


class ResultFile:
    """An append-only CSV with a fixed header."""

    def __init__(self, path: Path, columns: Sequence[str], key: Sequence[str]) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.key = tuple(key)

    def start(self, resume: bool) -> set[tuple[str, ...]]:
        """Open for a run: keep the rows (resume) or start empty; return the keys already done."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            drop_partial_line(self.path)
            rows = read_rows(self.path)
            return {key_of(r, self.key) for r in rows}
        with self.path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow(self.columns)
        return set()

    def append(self, row: dict[str, Any]) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"{self.path.name}: unknown columns {sorted(unknown)}")
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c)) for c in self.columns])
            fh.flush()
            os.fsync(fh.fileno())


def drop_partial_line(path: Path) -> None:
    """A process killed mid-write may leave half a row: cut the file back to its last complete line."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def numeric(rows: Iterable[dict[str, str]], column: str) -> list[float]:
    out = []
    for r in rows:
        text = r.get(column, "")
        out.append(float(text) if text not in ("", None) else math.nan)
    return out
