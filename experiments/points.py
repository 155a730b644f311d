"""The points of a sweep: one per (mode, method panel, scheme, objective, swept value)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from experiments.config import SweepConfig


@dataclass(frozen=True)
class Point:
    figure: str
    mode: str  # modelled | live
    model: str
    method: str
    scheme: str
    objective: str
    split: int  # pinned split (on-device: n_layers, on-server: 0)
    latency_budget_s: float
    energy_budget_j: float
    paper_latency_budget_s: float  # the budget in the paper's units (live: before scaling)
    paper_energy_budget_j: float

    def scaled(self, latency: float, energy: float) -> Point:
        return replace(self, latency_budget_s=self.paper_latency_budget_s * latency,
                       energy_budget_j=self.paper_energy_budget_j * energy)

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()}


def _budgets(cfg: SweepConfig, panel_t: float | None, panel_e: float | None, t_grid: list[float],
             e_grid: list[float], splits: list[int], fixed_split: int) -> list[tuple[int, float, float]]:
    """(split, T0, E0) triples for the figure's axis."""
    if cfg.figure == "fig4":
        assert panel_e is not None, "fig4 panels fix energy_j"
        return [(fixed_split, t, panel_e) for t in t_grid]
    if cfg.figure == "fig5":
        assert panel_t is not None, "fig5 panels fix latency_s"
        return [(fixed_split, panel_t, e) for e in e_grid]
    assert panel_t is not None and panel_e is not None, "fig6 panels fix latency_s and energy_j"
    return [(s, panel_t, panel_e) for s in splits]


def modelled_points(cfg: SweepConfig, n_layers: int) -> list[Point]:
    m = cfg.modelled
    out = []
    for panel in cfg.methods:
        for scheme in cfg.schemes:
            for split, t0, e0 in _budgets(cfg, panel.latency_s, panel.energy_j, m.latency_grid_s,
                                          m.energy_grid_j, m.splits, m.split):
                out.append(Point(cfg.figure, "modelled", m.model, panel.name, scheme, "bound",
                                 _scheme_split(scheme, split, n_layers), t0, e0, t0, e0))
    return out


def _scheme_split(scheme: str, split: int, n_layers: int) -> int:
    # on-device / on-server fix their own split (the controller's scheme pins the same value).
    if scheme == "on-device":
        return n_layers
    if scheme == "on-server":
        return 0
    return split


def live_points(cfg: SweepConfig, n_layers: int) -> list[Point]:
    """Live points in paper units; `scaled` turns them into the live system's budgets at run time."""
    lv = cfg.live
    schemes = cfg.live_schemes if cfg.live_schemes is not None else cfg.schemes
    fixed_split = live_fixed_split(cfg, n_layers)
    out = []
    for panel in cfg.methods:
        if lv.methods is not None and panel.name not in lv.methods:
            continue
        for scheme in schemes:
            objectives = lv.objectives if scheme == "joint" else ["bound"]
            for objective in objectives:
                for split, t0, e0 in _budgets(cfg, panel.latency_s, panel.energy_j, lv.latency_grid_s,
                                              lv.energy_grid_j, lv.splits, fixed_split):
                    out.append(Point(cfg.figure, "live", lv.model, panel.name, scheme, objective,
                                     _scheme_split(scheme, split, n_layers), t0, e0, t0, e0))
    return out


def live_fixed_split(cfg: SweepConfig, n_layers: int) -> int:
    """The paper's split (4 of 12 layers) at the same depth fraction of the live model (2 of 6 for MiniLM)."""
    paper_layers = 12
    return max(1, round(cfg.modelled.split * n_layers / paper_layers)) if n_layers != paper_layers \
        else cfg.modelled.split
