"""The JSON contract of a multi-device problem (K devices on one edge server) and of its answer.

A problem is detected by its `devices` list; the one-device `Problem` keeps its
own contract. Each device brings its own processor, channel (gain, or distance
with K0 and alpha), power cap, budget, request rate, weight, ratio floors and
candidate splits; the server, bandwidth B and noise PSD N0 are shared. Every
device is checked as a one-device `Problem` too, so the same rules hold (unique
splits, pins within caps, measured points present), with the device named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from controller.problem import (
    Answer,
    BudgetSpec,
    DistortionPoints,
    Pins,
    PosFloat,
    Problem,
    ProcessorSpec,
    SplitSpec,
    Status,
    UnitFloat,
)
from splitbed.channel import gain_from_distance

MAX_DEVICES = 64
MAX_SPLITS = 256
MAX_EXHAUSTIVE = 4096  # split combinations an exhaustive search may visit
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SharedLinkSpec(_Strict):
    bandwidth_hz: PosFloat = Field(description="uplink bandwidth B, Hz; each device uses all of it in its TDMA slot")
    noise_psd_w_per_hz: PosFloat = Field(description="noise power spectral density N0, W/Hz")


class DeviceSpec(_Strict):
    id: DeviceId = Field(description="device id, unique in the problem")
    device: ProcessorSpec
    gain: PosFloat | None = Field(default=None, description="channel power gain g_k (linear)")
    distance_m: PosFloat | None = Field(default=None, description="device-server distance, m")
    k0_db: float | None = Field(default=None, ge=-300.0, le=300.0, description="path loss K0 at d0 = 1 m, dB")
    alpha: Annotated[float, Field(ge=0.0, le=10.0)] | None = Field(default=None, description="path-loss exponent")
    p_max_w: PosFloat = Field(description="maximum transmit power P_max,k, W")
    budget: BudgetSpec
    rate_hz: PosFloat | None = Field(default=None, description="request rate lambda_k, 1/s (default 1/T0_k)")
    weight: PosFloat = Field(default=1.0, le=1e6, description="weight w_k of the device in the sum objective")
    rho_min_device: UnitFloat = 0.0
    rho_min_server: UnitFloat = 0.0
    n_layers: Annotated[int, Field(ge=1)] | None = None
    splits: list[SplitSpec] = Field(min_length=1, max_length=MAX_SPLITS)
    distortion_points: DistortionPoints | None = None
    pins: Pins = Field(default_factory=Pins)
    fixed_latency_s: Annotated[float, Field(ge=0.0, le=1e3)] = Field(
        default=0.0, description="T_fix,k, s: measured per-request fixed cost of this device's requests")

    @model_validator(mode="after")
    def _resolve_gain(self) -> DeviceSpec:
        if self.gain is None:
            if self.distance_m is None or self.k0_db is None or self.alpha is None:
                raise ValueError("gain missing: give gain, or all of distance_m, k0_db and alpha")
            self.gain = gain_from_distance(self.distance_m, self.k0_db, self.alpha)
        return self

    @property
    def rate(self) -> float:
        return self.rate_hz if self.rate_hz is not None else 1.0 / self.budget.latency_s


class MultiProblem(_Strict):
    server: ProcessorSpec
    link: SharedLinkSpec
    devices: list[DeviceSpec] = Field(min_length=1, max_length=MAX_DEVICES)
    u_max: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.9, description="largest utilisation of the server and of the uplink (headroom for queueing)"
    )
    fairness: Literal["sum", "max-min"] = "sum"
    objective: Literal["bound", "measured"] = "bound"
    bits_per_param: PosFloat = Field(default=32.0, description="bits per stored parameter b")
    entropy_bits_per_param: float = Field(default=-2.0, description="differential entropy h per parameter, bits")
    split_search: Literal["descent", "exhaustive"] = Field(
        default="descent", description="coordinate descent over the devices' splits, or every combination"
    )

    @model_validator(mode="after")
    def _consistent(self) -> MultiProblem:
        ids = [d.id for d in self.devices]
        if len(set(ids)) != len(ids):
            raise ValueError("devices: device ids must be unique")
        for i, dev in enumerate(self.devices):
            try:
                self._problem(dev)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(x) for x in err["loc"])
                raise ValueError(f"devices[{i}] ({dev.id}){': ' + where if where else ''}: {err['msg']}") from None
        if self.split_search == "exhaustive":
            combos = 1
            for dev in self.devices:
                combos *= len(dev.splits) if dev.pins.split is None else 1
                if combos > MAX_EXHAUSTIVE:
                    raise ValueError(f"split_search: exhaustive is limited to {MAX_EXHAUSTIVE} split combinations")
        return self

    def _problem(self, dev: DeviceSpec) -> Problem:
        return Problem.model_validate(self._problem_dict(dev))

    def _problem_dict(self, dev: DeviceSpec) -> dict[str, Any]:
        return {
            "device": dev.device.model_dump(),
            "server": self.server.model_dump(),
            "link": {"bandwidth_hz": self.link.bandwidth_hz, "noise_psd_w_per_hz": self.link.noise_psd_w_per_hz,
                     "p_max_w": dev.p_max_w, "gain": dev.gain},
            "budget": dev.budget.model_dump(),
            "splits": [s.model_dump(exclude_none=True) for s in dev.splits],
            "bits_per_param": self.bits_per_param,
            "entropy_bits_per_param": self.entropy_bits_per_param,
            "n_layers": dev.n_layers,
            "rho_min_device": dev.rho_min_device,
            "rho_min_server": dev.rho_min_server,
            "objective": self.objective,
            "distortion_points": dev.distortion_points.model_dump() if dev.distortion_points else None,
            "pins": dev.pins.model_dump(exclude_none=True),
            "fixed_latency_s": dev.fixed_latency_s,
        }

    def device_problems(self) -> list[Problem]:
        """Each device as a one-device P1 problem (its own budget, no shared constraints)."""
        return [self._problem(d) for d in self.devices]

    @classmethod
    def load(cls, path: str | Path) -> MultiProblem:
        return cls.model_validate(json.loads(Path(path).read_text()))


def is_multi(data: object) -> bool:
    """A parsed JSON body is the multi-device form when it has a `devices` key."""
    return isinstance(data, dict) and "devices" in data


class DeviceAnswer(Answer):
    """One device's plan: the fields of a one-device answer, with its id and shared-resource loads."""

    id: str
    rate_hz: float
    server_load: float | None = Field(default=None, description="lambda_k t~_k: this device's share of server time")
    uplink_load: float | None = Field(default=None, description="lambda_k t^U_k: this device's share of airtime")


class SearchReport(BaseModel):
    """How the splits were chosen, and how far from the best combination the plan can be."""

    method: str
    combinations: int = Field(description="number of split combinations in the search space")
    evaluated: int = Field(description="split combinations solved jointly (one conic solve each)")
    phase1_evaluated: int = Field(default=0, description="joint solves of the least-load search (phase 1)")
    priced: int = Field(default=0, description="combinations whose prices were used to bound moves")
    sweeps: int = 0
    rounds: int = Field(default=0, description="improving jumps or two-device moves after the descent")
    start: list[int] | None = Field(
        default=None, description="split of each device where the descent started (after phase 1, if any)"
    )
    score: float | None = Field(default=None, description="the joint program's optimum (minimised, scaled units)")
    dual_bound: float | None = Field(
        default=None,
        description="Lagrangian lower bound on the optimum over every split combination, at the plan's prices; "
        "score - dual_bound bounds the gap to the best combination (0: proven best)",
    )


class MultiAnswer(BaseModel):
    status: Status
    message: str | None = None
    fairness: str
    objective: str
    objective_value: float | None = Field(
        default=None,
        description="sum: sum_k w_k log2 D^_k (bound) or sum_k w_k D_k (measured); "
        "max-min: the smallest kept fraction (bound) or the largest fitted distortion (measured)",
    )
    devices: list[DeviceAnswer]
    server_utilisation: float | None = Field(default=None, description="sum_k lambda_k t~_k")
    uplink_utilisation: float | None = Field(default=None, description="sum_k lambda_k t^U_k")
    u_max: float
    search: SearchReport | None = None
    solve_time_s: float = 0.0
    source: str = "modelled:paper-eqs-4-11, shared server and TDMA uplink"
