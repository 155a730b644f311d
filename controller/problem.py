"""The JSON contract of a P1 problem and of its answer (pydantic v2, SI units).

A problem is one device, one server, one uplink, one (latency, energy) budget
and one or more candidate split points, each with its FLOPs, parameter counts
and upload payload. Invalid input raises `pydantic.ValidationError` whose
`loc` names the offending field.

Measured-distortion points may be given per split (`splits[i].distortion_points`)
or once at the top level (`distortion_points`) as the default for every split.
Per split is the natural place: the device part, and so its distortion-vs-ratio
curve, changes with the split point; the top-level form is a shortcut when one
curve per side is all that was measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.system_model import Link, Processor, SplitModel
from splitbed.channel import gain_from_distance

PosFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
UnitFloat = Annotated[float, Field(ge=0.0, le=1.0)]
# Physical ceilings far above any real system: beyond them the solver's numbers overflow, so they are
# rejected as bad input (422 naming the field) instead of failing inside the solver.
Hz = Annotated[float, Field(gt=0.0, le=1e12)]
Count = Annotated[float, Field(ge=0.0, le=1e18)]
MAX_SPLITS = 4096  # hard ceiling of the contract; services apply their own (smaller) limit
MAX_CLOCK_STEPS = 1024


class _Strict(BaseModel):
    # strict: true is not 1.0 and "1e3" is not a number; finite numbers only.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class ProcessorSpec(_Strict):
    f_max_hz: Hz = Field(description="maximum clock frequency, Hz")
    flops_per_cycle: PosFloat = Field(le=1e6, description="FLOPs per clock cycle c")
    pue: PosFloat = Field(le=100.0, description="power usage effectiveness eta")
    power_coeff: PosFloat = Field(le=1e-12, description="chip power coefficient phi, W/(cycle/s)^3")
    f_min_hz: NonNegFloat = Field(default=0.0, le=1e12, description="lowest clock the hardware offers, Hz (0 = any)")
    clock_steps_hz: list[Annotated[float, Field(gt=0.0, le=1e12)]] = Field(
        default_factory=list, max_length=MAX_CLOCK_STEPS,
        description="discrete clocks the hardware offers, Hz; plans put f on these steps (empty = continuous)",
    )

    @model_validator(mode="after")
    def _clock_range(self) -> ProcessorSpec:
        if self.f_min_hz > self.f_max_hz:
            raise ValueError("f_min_hz exceeds f_max_hz")
        if any(f > self.f_max_hz * (1 + 1e-9) for f in self.clock_steps_hz):
            raise ValueError("clock_steps_hz: a step exceeds f_max_hz")
        return self

    def to_model(self) -> Processor:
        steps = tuple(sorted({f for f in self.clock_steps_hz if f >= self.f_min_hz * (1 - 1e-9)}))
        return Processor(self.f_max_hz, self.flops_per_cycle, self.pue, self.power_coeff, self.f_min_hz, steps)


class LinkSpec(_Strict):
    bandwidth_hz: Hz = Field(description="uplink bandwidth B, Hz")
    noise_psd_w_per_hz: PosFloat = Field(le=1.0, description="noise power spectral density N0, W/Hz")
    p_max_w: PosFloat = Field(le=1e4, description="maximum transmit power, W")
    gain: PosFloat | None = Field(default=None, le=1.0, description="channel power gain g (linear, at most 1)")
    distance_m: PosFloat | None = Field(default=None, le=1e7, description="device-server distance, m")
    k0_db: float | None = Field(default=None, ge=-300.0, le=0.0,
                                description="reference path loss K0 at d0 = 1 m, dB (a loss: at most 0)")
    alpha: Annotated[float, Field(ge=0.0, le=10.0)] | None = Field(default=None, description="path-loss exponent")

    @model_validator(mode="after")
    def _resolve_gain(self) -> LinkSpec:
        if self.gain is None:
            if self.distance_m is None or self.k0_db is None or self.alpha is None:
                raise ValueError("link.gain missing: give gain, or all of distance_m, k0_db and alpha")
            gain = gain_from_distance(self.distance_m, self.k0_db, self.alpha)
            if not 0.0 < gain <= 1.0:
                raise ValueError(f"link: distance_m, k0_db and alpha give gain {gain:.3g}, outside (0, 1]")
            self.gain = gain
        return self

    def to_model(self) -> Link:
        assert self.gain is not None  # set by the validator
        return Link(self.bandwidth_hz, self.noise_psd_w_per_hz, self.gain, self.p_max_w)


class BudgetSpec(_Strict):
    latency_s: PosFloat = Field(le=1e6, description="latency budget T0, s")
    energy_j: PosFloat = Field(le=1e9, description="energy budget E0, J")


# Lax only about the container (a JSON array is a tuple); its numbers stay strict.
Point = Annotated[tuple[UnitFloat, Annotated[float, Field(ge=0.0, le=1e6)]], Field(strict=False)]


class DistortionPoints(_Strict):
    """Measured output distortion vs kept ratio, per side: [[rho, d], ...]."""

    device: list[Point] = Field(default_factory=list, max_length=1000)
    server: list[Point] = Field(default_factory=list, max_length=1000)


class SplitSpec(_Strict):
    split: Annotated[int, Field(ge=0, le=100_000)] = Field(description="split point L: layers [0, L) on the device")
    device_flops: Count = Field(description="FLOPs of the unpruned device part N")
    server_flops: Count = Field(description="FLOPs of the unpruned server part N~")
    device_params: Count = Field(description="parameter count of the device part q")
    server_params: Count = Field(description="parameter count of the server part s")
    payload_bits: Count = Field(description="uploaded hidden state (or raw input) size theta, bits")
    distortion_points: DistortionPoints | None = None

    @model_validator(mode="after")
    def _some_params(self) -> SplitSpec:
        if self.device_params + self.server_params <= 0.0:
            raise ValueError("device_params + server_params must be positive")
        if self.device_flops > 0.0 and self.server_flops > 0.0 and self.payload_bits <= 0.0:
            raise ValueError("payload_bits must be positive when both sides compute")
        return self


class Pins(_Strict):
    """Knobs fixed by hand; the solver chooses the others."""

    split: Annotated[int, Field(ge=0)] | None = None
    rho_device: UnitFloat | None = None
    rho_server: UnitFloat | None = None
    power_w: PosFloat | None = None
    freq_device_hz: PosFloat | None = None
    freq_server_hz: PosFloat | None = None


class Problem(_Strict):
    device: ProcessorSpec
    server: ProcessorSpec
    link: LinkSpec
    budget: BudgetSpec
    splits: list[SplitSpec] = Field(min_length=1, max_length=MAX_SPLITS)
    bits_per_param: PosFloat = Field(default=32.0, le=64.0, description="bits per stored parameter b")
    entropy_bits_per_param: float = Field(default=-2.0, ge=-64.0, le=64.0,
                                          description="differential entropy h per parameter, bits")
    n_layers: Annotated[int, Field(ge=1, le=100_000)] | None = None
    rho_min_device: UnitFloat = 0.0
    rho_min_server: UnitFloat = 0.0
    objective: Literal["bound", "measured"] = "bound"
    distortion_points: DistortionPoints | None = None
    pins: Pins = Field(default_factory=Pins)
    fixed_latency_s: NonNegFloat = Field(
        default=0.0, le=1e3, description="T_fix, s: measured per-request cost added to the latency of every split "
        "that sends a request to the server (encode, gRPC round trip, decode); 0 = not modelled")

    @model_validator(mode="after")
    def _consistent(self) -> Problem:
        indices = [s.split for s in self.splits]
        if len(set(indices)) != len(indices):
            raise ValueError("splits: split indices must be unique")
        if self.n_layers is not None and max(indices) > self.n_layers:
            raise ValueError("splits: a split index exceeds n_layers")
        pins = self.pins
        if pins.split is not None and pins.split not in indices:
            raise ValueError(f"pins.split: split {pins.split} is not among splits")
        if pins.power_w is not None and pins.power_w > self.link.p_max_w:
            raise ValueError("pins.power_w exceeds link.p_max_w")
        if pins.freq_device_hz is not None and pins.freq_device_hz > self.device.f_max_hz:
            raise ValueError("pins.freq_device_hz exceeds device.f_max_hz")
        if pins.freq_server_hz is not None and pins.freq_server_hz > self.server.f_max_hz:
            raise ValueError("pins.freq_server_hz exceeds server.f_max_hz")
        if pins.rho_device is not None and pins.rho_device < self.rho_min_device:
            raise ValueError("pins.rho_device is below rho_min_device")
        if pins.rho_server is not None and pins.rho_server < self.rho_min_server:
            raise ValueError("pins.rho_server is below rho_min_server")
        if self.objective == "measured":
            for i, spec in enumerate(self.splits):
                pts = self.points_for(spec)
                for side, params, got in (
                    ("device", spec.device_params, pts.device if pts else []),
                    ("server", spec.server_params, pts.server if pts else []),
                ):
                    if params > 0.0 and len({round(r, 12) for r, _ in got}) < 2:
                        raise ValueError(
                            f"distortion_points.{side}: split {spec.split} (splits[{i}]) needs at least two "
                            "points with distinct ratios for the measured objective"
                        )
        return self

    def points_for(self, spec: SplitSpec) -> DistortionPoints | None:
        return spec.distortion_points if spec.distortion_points is not None else self.distortion_points

    def split_model(self, spec: SplitSpec) -> SplitModel:
        return SplitModel(
            split=spec.split,
            device_flops=spec.device_flops,
            server_flops=spec.server_flops,
            device_params=spec.device_params,
            server_params=spec.server_params,
            payload_bits=spec.payload_bits,
            device=self.device.to_model(),
            server=self.server.to_model(),
            link=self.link.to_model(),
            bits_per_param=self.bits_per_param,
            entropy_bits_per_param=self.entropy_bits_per_param,
            fixed_latency_s=self.fixed_latency_s,
        )

    @property
    def last_split(self) -> int:
        return self.n_layers if self.n_layers is not None else max(s.split for s in self.splits)

    @classmethod
    def load(cls, path: str | Path) -> Problem:
        return cls.model_validate(json.loads(Path(path).read_text()))


Status = Literal["optimal", "infeasible", "error"]


class StageBreakdown(BaseModel):
    """Per-stage figures, modelled with the paper's formulas: seconds and joules."""

    t_device: float
    t_upload: float
    t_server: float
    e_device: float
    e_upload: float
    e_server: float
    t_fixed: float = Field(default=0.0, description="measured per-request fixed cost T_fix, s (not scaled by clocks)")


class SplitAnswer(BaseModel):
    """The plan for one split point (or why there is none)."""

    status: Status
    message: str | None = None
    split: int | None = None
    solver: str = "exact"
    scheme: str = "joint"
    objective: str = "bound"
    rho_device: float | None = None
    rho_server: float | None = None
    power_w: float | None = None
    freq_device_hz: float | None = None
    freq_server_hz: float | None = None
    latency_s: float | None = None
    energy_j: float | None = None
    stage: StageBreakdown | None = None
    rate_bps: float | None = None
    payload_bits: float | None = None
    kept_params: float | None = None
    log2_distortion_bound: float | None = None
    objective_value: float | None = Field(
        default=None, description="minimised objective: log2 of the bound, or the fitted measured distortion"
    )
    solve_time_s: float = 0.0
    iterations: int | None = None
    objective_trace: list[float] | None = None
    min_latency_s: float | None = Field(default=None, description="smallest feasible T0 at the given E0")
    min_energy_j: float | None = Field(default=None, description="smallest feasible E0 at the given T0")
    source: str = "modelled:paper-eqs-4-11"


class Answer(SplitAnswer):
    per_split: list[SplitAnswer] | None = None
