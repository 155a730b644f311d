"""matplotlib figures from the result CSVs (one PNG per figure and mode)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Rows = list[dict[str, str]]
SCHEME_STYLE = {
    "joint": ("C0", "o", "-"), "fixed-power": ("C1", "s", "--"), "fixed-clocks": ("C2", "^", "--"),
    "prune-device-only": ("C3", "v", ":"), "prune-server-only": ("C4", "D", ":"), "on-device": ("C5", "P", "-."),
    "on-server": ("C6", "X", "-."),
}
AXES = {"fig4": ("latency_budget_s", "T0 (s)"), "fig5": ("energy_budget_j", "E0 (J)"), "fig6": ("split", "split L")}


def f(row: dict[str, str], col: str) -> float:
    text = row.get(col, "")
    return float(text) if text not in ("", None) else math.nan


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig3(rows: Rows, path: Path) -> Path:
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(4.2 * max(1, len(models)), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models, strict=False):
        for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
            sel = sorted((r for r in rows if r["model"] == model and r["method"] == method),
                         key=lambda r: f(r, "achieved_keep_ratio"))
            x = [f(r, "achieved_keep_ratio") for r in sel]
            short = method.replace("-magnitude", "")
            ax.plot(x, [f(r, "output_distortion") for r in sel], f"C{i}-o", ms=3, label=f"output ({short})")
            ax.plot(x, [f(r, "parameter_distortion") for r in sel], f"C{i}--s", ms=3, label=f"parameter ({short})")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("kept fraction of prunable weights (achieved)")
        ax.set_ylabel("normalised distortion")
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _scheme_lines(ax: plt.Axes, rows: Rows, xcol: str, ycol: str, schemes: Sequence[str], logx: bool) -> None:
    for scheme in schemes:
        sel = sorted((r for r in rows if r["scheme"] == scheme), key=lambda r: f(r, xcol))
        if not sel:
            continue
        color, marker, ls = SCHEME_STYLE.get(scheme, ("k", ".", "-"))
        ok = [r for r in sel if r["status"] == "optimal"]
        ax.plot([f(r, xcol) for r in ok], [f(r, ycol) for r in ok], color=color, marker=marker, ls=ls, ms=4,
                label=scheme)
        bad = [r for r in sel if r["status"] != "optimal"]
        if bad:
            y_mark = 0.02 + 0.035 * list(SCHEME_STYLE).index(scheme) if scheme in SCHEME_STYLE else 0.02
            ax.plot([f(r, xcol) for r in bad], [y_mark] * len(bad), color=color, marker="x", ls="none", ms=6,
                    transform=ax.get_xaxis_transform(), clip_on=False)
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)


def modelled(rows: Rows, figure: str, path: Path) -> Path:
    xcol, xlabel = AXES[figure]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    fig, axes = plt.subplots(2, len(methods), figsize=(5.2 * len(methods), 6.4), squeeze=False)
    for j, method in enumerate(methods):
        sel = [r for r in rows if r["method"] == method]
        fixed = _fixed(sel, figure)
        for i, (ycol, ylabel) in enumerate((("log2_distortion_bound", "log2 distortion bound (lower = better)"),
                                            ("kept_fraction", "kept fraction of prunable params"))):
            ax = axes[i][j]
            _scheme_lines(ax, sel, xcol, ycol, schemes, logx=figure == "fig5")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel, fontsize=8)
            if i == 0:
                ax.set_title(f"{sel[0]['model']}, {method} ({fixed}); x = infeasible", fontsize=9)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def _fixed(rows: Rows, figure: str) -> str:
    r = rows[0]
    t, e = f(r, "latency_budget_s"), f(r, "energy_budget_j")
    if figure == "fig4":
        return f"E0 = {e * 1e3:.3g} mJ"
    if figure == "fig5":
        return f"T0 = {t * 1e3:.3g} ms"
    return f"T0 = {t * 1e3:.3g} ms, E0 = {e * 1e3:.3g} mJ"


LIVE_PANELS = (
    ("cosine_mean", "mean cosine to dense"),
    ("retrieval_top1_agreement", "retrieval top-1 agreement"),
    ("measured_latency_s", "measured median latency (s)"),
    ("measured_energy_j", "measured energy (J)"),
)


def live(rows: Rows, figure: str, path: Path) -> Path:
    xcol, xlabel = AXES[figure]
    rows = [r for r in rows if r["objective"] == "bound"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    fig, axes = plt.subplots(len(methods), 4, figsize=(17, 3.6 * len(methods)), squeeze=False)
    for i, method in enumerate(methods):
        sel = [r for r in rows if r["method"] == method]
        for j, (ycol, ylabel) in enumerate(LIVE_PANELS):
            ax = axes[i][j]
            _scheme_lines(ax, sel, xcol, ycol, schemes, logx=figure == "fig5")
            if ycol in ("measured_latency_s", "measured_energy_j") and figure != "fig6":
                budget = "latency_budget_s" if ycol == "measured_latency_s" else "energy_budget_j"
                xs = sorted({f(r, xcol) for r in sel})
                ax.plot(xs, [f(next(r for r in sel if f(r, xcol) == x), budget) for x in xs], "k:", lw=1,
                        label="budget")
                if (figure == "fig4") == (ycol == "measured_latency_s"):
                    ax.set_yscale("log" if figure == "fig5" else "linear")
            ax.set_xlabel(xlabel + (" (live units)" if figure != "fig6" else ""))
            ax.set_ylabel(ylabel, fontsize=8)
            ax.set_title(f"{sel[0]['model']} live, {method}", fontsize=9)
        axes[i][0].legend(fontsize=7)
    return _save(fig, path)


def objectives(rows: Rows, path: Path) -> Path:
    """Measured-distortion objective vs the bound objective at equal budgets (joint, live)."""
    sel = [r for r in rows if r["mode"] == "live" and r["scheme"] == "joint" and r["status"] == "optimal"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (ycol, ylabel) in zip(axes, (("cosine_mean", "mean cosine to dense"),
                                         ("retrieval_top1_agreement", "top-1 agreement"),
                                         ("kept_fraction", "kept fraction")), strict=True):
        for k, obj in enumerate(("bound", "measured")):
            pts = sorted((r for r in sel if r["objective"] == obj and r["method"] == "magnitude"),
                         key=lambda r: f(r, "latency_budget_s"))
            ax.plot([f(r, "latency_budget_s") for r in pts], [f(r, ycol) for r in pts], f"C{k}-o",
                    label=f"{obj} objective")
        ax.set_xlabel("T0 (s, live units)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def prediction_errors(by_figure: dict[str, Rows], path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    names = [n for n, rows in by_figure.items() if rows]
    for ax, (col, label) in zip(axes, (("prediction_error", "latency: (measured - predicted) / predicted"),
                                       ("energy_prediction_error", "energy: (measured - predicted) / predicted")),
                                strict=True):
        data = [[f(r, col) for r in by_figure[n] if not math.isnan(f(r, col))] for n in names]
        keep = [(n, d) for n, d in zip(names, data, strict=True) if d]
        if keep:
            ax.boxplot([d for _, d in keep], showmeans=True)
            ax.set_xticks(range(1, len(keep) + 1), [n for n, _ in keep])
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)
