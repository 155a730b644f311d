"""`experiments report`: docs/results.md with its PNG figures (and a copy of the CSVs) from a results folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from experiments import captions, plots
from experiments.store import read_rows

Rows = list[dict[str, str]]


def _rel(doc: Path, target: Path) -> str:
    """The image path as the Markdown file links it."""
    try:
        return str(target.resolve().relative_to(doc.resolve().parent))
    except ValueError:
        return str(target.resolve())


def _load(out: Path, name: str) -> Rows:
    path = out / f"{name}.csv"
    return read_rows(path) if path.exists() else []


def _manifest(out: Path) -> dict[str, Any]:
    path = out / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _live_notes(out: Path) -> dict[str, Any]:
    notes = {}
    for p in sorted(out.glob("*.live-*.json")):
        data = json.loads(p.read_text())
        data.pop("nodes", None)
        notes[p.stem] = data
    return notes


def _dense_recall(notes: dict[str, Any]) -> tuple[int, float] | None:
    """(queries, recall@1 of the dense model) on the live runs' task: the ceiling of the live recall@1."""
    if not notes:
        return None
    from experiments import retrieval
    from experiments.config import LiveSpec
    from experiments.live import dense_embeddings

    n = next(iter(notes.values()))
    task = retrieval.build_task(int(n["requests_per_point"]))
    lv = LiveSpec(model=n["model"], seq_len=n["seq_len"], encoding=n["encoding"])
    dense = dense_embeddings(lv, task.texts)
    return len(task.queries), retrieval.scores(dense, dense, len(task.documents))["dense_recall_at1"]


def write_report(out: Path, doc: Path, figdir: Path) -> Path:
    figdir.mkdir(parents=True, exist_ok=True)
    for p in list(out.glob("*.csv")) + list(out.glob("*.json")) + list(out.glob("timings.txt")):
        shutil.copy2(p, figdir / p.name)
    data = {n: _load(out, n) for n in ("fig3", "fig4", "fig5", "fig6")}
    manifest, notes = _manifest(out), _live_notes(out)
    parts = [captions.header(manifest, notes)]
    extra = out / "notes.md"  # free-text notes about the run (e.g. an interruption), shown verbatim
    if extra.exists():
        parts.append(extra.read_text(encoding="utf-8").strip())
    if data["fig3"]:
        img = plots.fig3(data["fig3"], figdir / "fig3.png")
        parts.append(captions.fig3(_rel(doc, img), data["fig3"]))
    for name in ("fig4", "fig5", "fig6"):
        rows = data[name]
        mod = [r for r in rows if r["mode"] == "modelled"]
        liv = [r for r in rows if r["mode"] == "live"]
        imgs = {}
        if mod:
            imgs["modelled"] = _rel(doc, plots.modelled(mod, name, figdir / f"{name}-modelled.png"))
        if liv:
            imgs["live"] = _rel(doc, plots.live(liv, name, figdir / f"{name}-live.png"))
        if imgs:
            parts.append(captions.points(name, imgs, mod, liv, notes))
    live_all = [r for n in ("fig4", "fig5", "fig6") for r in data[n] if r["mode"] == "live"]
    if any(r["objective"] == "measured" for r in live_all):
        img = plots.objectives(data["fig4"], figdir / "objectives.png")
        parts.append(captions.objectives(_rel(doc, img), data["fig4"]))
    if live_all:
        img = plots.prediction_errors({n: [r for r in data[n] if r["mode"] == "live"] for n in
                                       ("fig4", "fig5", "fig6")}, figdir / "prediction-error.png")
        parts.append(captions.prediction(_rel(doc, img), live_all))
    parts.append(captions.retrieval_note(_dense_recall(notes)))
    parts.append(captions.closing(data))
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return doc


