"""What a sweep is: the built-in figures (full and quick) and a user's own sweep from YAML or JSON.

`examples/sweep.yaml` shows every key. Budgets are SI units. Live budgets are given in the paper's units
(BERT-base) and scaled to the live model's FLOPs (see `LiveSpec.budget_scale`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FigureKind = Literal["fig3", "fig4", "fig5", "fig6"]
Objective = Literal["bound", "measured"]
Fig3Model = Literal["fcdnn-8", "fcdnn-16", "minilm", "bert-base"]
Fig3Method = Literal["unstructured-magnitude", "structured-magnitude"]


def _objectives() -> list[Objective]:
    return ["bound"]


def _fig3_models() -> list[Fig3Model]:
    return ["fcdnn-8", "fcdnn-16", "minilm", "bert-base"]


def _fig3_methods() -> list[Fig3Method]:
    return ["unstructured-magnitude", "structured-magnitude"]
ALL_SCHEMES = ("joint", "fixed-power", "fixed-clocks", "prune-device-only", "prune-server-only", "on-device",
               "on-server")
ROOT = Path(__file__).resolve().parent.parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MethodPanel(_Strict):
    """One pruning method and the budget held fixed while the other is swept (the paper's captions)."""

    name: Literal["magnitude", "random"] = Field(description="pruning criterion")
    latency_s: float | None = Field(default=None, gt=0, description="fixed T0 (fig5, fig6), s")
    energy_j: float | None = Field(default=None, gt=0, description="fixed E0 (fig4, fig6), J")


class ModelledSpec(_Strict):
    problem: str = Field(default="examples/paper.json", description="problem JSON (controller contract)")
    model: str = Field(default="bert-base", description="label of the model the problem describes")
    split: int = Field(default=4, ge=0, description="split point for fig4/fig5 (the paper's 4)")
    latency_grid_s: list[float] = Field(default_factory=list, description="T0 values swept (fig4), s")
    energy_grid_j: list[float] = Field(default_factory=list, description="E0 values swept (fig5), J")
    splits: list[int] = Field(default_factory=list, description="split points swept (fig6)")


class LinkSpec(_Strict):
    bandwidth_hz: float = Field(default=5e6, gt=0)
    noise_psd_w_per_hz: float = Field(default=2e-19, gt=0)
    p_max_w: float = Field(default=0.5, gt=0)
    distance_m: float = Field(default=500.0, gt=0)
    k0_db: float = -30.0
    path_loss_exponent: float = Field(default=2.8, gt=0)


class LiveSpec(_Strict):
    model: str = Field(default="minilm", description="model the agent and the edge server run")
    seq_len: int = Field(default=64, gt=1, description="tokens per request (padded/truncated)")
    encoding: Literal["fp32", "fp16", "int8"] = "fp16"
    requests_per_point: int = Field(default=50, ge=2, description="requests per point: half documents, half queries")
    structured: bool = Field(default=True, description="structured pruning (heads/neurons removed) instead of zeroing")
    device_clock_profile: str = "paper-device"
    server_clock_profile: str = "edge-cpu"
    link: LinkSpec = Field(default_factory=LinkSpec)
    budget_scale: Literal["min-budget", "flops", "none"] = Field(
        default="min-budget", description="min-budget: T0 x live/paper minimal feasible T0 and E0 likewise; "
        "flops: both x (live model FLOPs / paper model FLOPs); none: as given")
    paper_flops: float = Field(default=21.77e9, gt=0, description="FLOPs of the paper's model (BERT-base), for scaling")
    latency_grid_s: list[float] = Field(default_factory=list, description="T0 swept (fig4), paper units, s")
    energy_grid_j: list[float] = Field(default_factory=list, description="E0 swept (fig5), paper units, J")
    splits: list[int] = Field(default_factory=list, description="split points swept (fig6)")
    objectives: list[Objective] = Field(
        default_factory=_objectives, description="bound (the paper's) and/or the measured-distortion objective")
    rho_min: float = Field(default=0.3, ge=0, le=1, description="controller's floor on both kept ratios")
    methods: list[Literal["magnitude", "random"]] | None = Field(
        default=None, description="method panels run live (unset = all of `methods`)")


class Fig3Spec(_Strict):
    models: list[Fig3Model] = Field(default_factory=_fig3_models)
    methods: list[Fig3Method] = Field(default_factory=_fig3_methods)
    keep_ratios: list[float] = Field(default_factory=lambda: [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    n_inputs: int = Field(default=32, ge=2, description="fixed inputs the output distortion is averaged over")
    train_epochs: int = Field(default=60, ge=1, description="FCDNN training epochs on sklearn's digits")


class SweepConfig(_Strict):
    name: str = Field(description="CSV file stem: OUT/<name>.csv")
    figure: FigureKind = Field(description="fig3: distortions; fig4: vs T0; fig5: vs E0; fig6: vs split")
    schemes: list[str] = Field(default_factory=lambda: list(ALL_SCHEMES), description="schemes (modelled)")
    live_schemes: list[str] | None = Field(default=None, description="schemes run live (unset = schemes)")
    methods: list[MethodPanel] = Field(default_factory=list)
    modelled: ModelledSpec = Field(default_factory=ModelledSpec)
    live: LiveSpec = Field(default_factory=LiveSpec)
    fig3: Fig3Spec = Field(default_factory=Fig3Spec)

    @classmethod
    def load(cls, path: str | Path) -> SweepConfig:
        text = Path(path).read_text(encoding="utf-8")
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        return cls.model_validate(data)


# The paper's captions: Fig 4(c)/(d) fix E0, Fig 5(c)/(d) fix T0 (BERT, magnitude / random).
FIG4_PANELS = [MethodPanel(name="magnitude", energy_j=0.0150), MethodPanel(name="random", energy_j=0.0011)]
FIG5_PANELS = [MethodPanel(name="magnitude", latency_s=0.35), MethodPanel(name="random", latency_s=0.21)]
# Fig 6 states no budgets; the fig4(c)/fig5(c) pair is used.
FIG6_PANELS = [MethodPanel(name="magnitude", latency_s=0.35, energy_j=0.0150)]


def builtin(name: str, quick: bool) -> SweepConfig:
    """The built-in sweep for one figure (`quick`: few points, at most 20 requests each)."""
    t_grid = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8, 1.0]
    e_grid = [0.0006, 0.0011, 0.002, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.03, 0.045, 0.06]
    live_t = [0.25, 0.35, 0.5, 0.8] if not quick else [0.5]
    live_e = [0.0075, 0.015, 0.03] if not quick else [0.015]
    requests = 50 if not quick else 16
    live_methods: list[Literal["magnitude", "random"]] | None = None if not quick else ["magnitude"]
    if name == "fig3":
        fig3 = Fig3Spec() if not quick else Fig3Spec(models=["fcdnn-8", "fcdnn-16", "minilm"],
                                                     keep_ratios=[1.0, 0.7, 0.4], n_inputs=8, train_epochs=5)
        return SweepConfig(name="fig3", figure="fig3", fig3=fig3)
    if name == "fig4":
        return SweepConfig(
            name="fig4", figure="fig4", methods=FIG4_PANELS,
            live_schemes=list(ALL_SCHEMES) if not quick else ["joint", "on-device"],
            modelled=ModelledSpec(latency_grid_s=t_grid if not quick else [0.1, 0.35, 0.8]),
            live=LiveSpec(latency_grid_s=live_t, requests_per_point=requests, objectives=["bound", "measured"],
                          methods=live_methods),
        )
    if name == "fig5":
        return SweepConfig(
            name="fig5", figure="fig5", methods=FIG5_PANELS,
            live_schemes=list(ALL_SCHEMES) if not quick else ["joint", "on-server"],
            modelled=ModelledSpec(energy_grid_j=e_grid if not quick else [0.0008, 0.003, 0.015]),
            live=LiveSpec(energy_grid_j=live_e, requests_per_point=requests, methods=live_methods),
        )
    if name == "fig6":
        return SweepConfig(
            name="fig6", figure="fig6", methods=FIG6_PANELS, schemes=["joint"], live_schemes=["joint"],
            modelled=ModelledSpec(splits=list(range(13)) if not quick else [0, 4, 8, 12]),
            live=LiveSpec(splits=list(range(7)) if not quick else [0, 2, 6], requests_per_point=requests),
        )
    raise ValueError(f"unknown figure {name!r}: fig3, fig4, fig5, fig6 or all")
