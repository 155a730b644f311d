"""The per-request record: made by the runner, read by the report, the telemetry and the JSONL file.

`to_dict` gives the JSONL object (optional parts appear only when present);
`from_dict` reads one back. Every time is in seconds and every energy in
joules, each with the source written beside it (`TIMING_SOURCES`, `*_source`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from splitbed.v1 import control_pb2

PREDICTION_SOURCE = "modelled:paper eqs. 4-11 with the plan's knobs"

# Where each timing comes from; written into every record of the JSONL file.
TIMING_SOURCES = {
    "device_compute_s": "measured:perf_counter (device process; + emulated stretch when the clock is emulated)",
    "encode_s": "measured:perf_counter (device process)",
    "upload_pacing_s": "measured:perf_counter (time the link backend held the upload)",
    "transfer_s": "derived: request sent -> answer received, minus server_total (includes upload pacing)",
    "server_compute_s": "measured:perf_counter (edge process; + emulated stretch when the clock is emulated)",
    "server_other_s": "measured:perf_counter (edge process: decode + queue)",
    "e2e_s": "measured:perf_counter (device process, input ready -> embedding decoded)",
}


@dataclass(frozen=True)
class Timings:
    device_compute_s: float
    encode_s: float
    upload_pacing_s: float
    transfer_s: float
    server_compute_s: float
    server_other_s: float
    e2e_s: float
    response_decode_s: float
    device_stretch_s: float
    server_stretch_s: float

    def stages(self) -> dict[str, float]:
        """The timed stages (emulated stretches left out: they are part of the compute times)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if not k.endswith("stretch_s")}


@dataclass(frozen=True)
class Energy:
    """Energy of the stages that have a meter or a model; a stage without one is absent (None)."""

    device_j: float | None = None
    device_source: str | None = None
    upload_j: float | None = None
    upload_source: str | None = None
    server_j: float | None = None
    server_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Predicted:
    """The plan's prediction for this request (modelled, not measured)."""

    t_device_s: float
    t_upload_s: float
    t_server_s: float
    latency_s: float
    e_device_j: float
    e_upload_j: float
    e_server_j: float
    energy_j: float
    source: str = PREDICTION_SOURCE

    @classmethod
    def of(cls, p: control_pb2.Prediction) -> Predicted:
        return cls(p.t_device_s, p.t_upload_s, p.t_server_s, p.latency_s, p.e_device_j, p.e_upload_j,
                   p.e_server_j, p.energy_j)


@dataclass
class RequestRecord:
    """One request: its output, the knobs it ran with, measured timings and energy, the plan's prediction."""

    embedding: np.ndarray
    n_tokens: int
    seq_len: int
    payload_bytes: int
    config_version: int
    split: int
    rho: float
    rho_server: float
    method: str
    encoding: str
    timings: Timings
    energy: Energy | None = None
    predicted: Predicted | None = None
    prediction_error: float | None = None  # (measured e2e - predicted) / predicted; written with `predicted`
    id: int | str | None = None
    text: str | None = None
    rep: int | None = None  # repetition and input index: the request's key within its run (--resume)
    index: int | None = None
    run_id: str | None = None  # idempotent (run_id, seq) the edge server's replay window answers by
    seq: int | None = None
    cosine: float | None = None
    l2: float | None = None
    timing_sources: dict[str, str] | None = field(default=None, repr=False)
    model_label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSONL object, in the file's key order; `embedding` stays an array."""
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        for key in ("text", "rep", "index", "run_id", "seq"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(embedding=self.embedding, n_tokens=self.n_tokens, seq_len=self.seq_len,
                   payload_bytes=self.payload_bytes, config_version=self.config_version, split=self.split,
                   rho=self.rho, rho_server=self.rho_server, method=self.method, encoding=self.encoding,
                   timings=dataclasses.asdict(self.timings))
        if self.energy is not None:
            out["energy"] = self.energy.to_dict()
        if self.predicted is not None:
            out["predicted"] = dataclasses.asdict(self.predicted)
            out["prediction_error"] = self.prediction_error
        for key in ("cosine", "l2", "timing_sources", "model_label"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RequestRecord:
        """A record read back from its JSONL object."""
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in fields}
        kwargs["embedding"] = np.asarray(d["embedding"], dtype=np.float32)
        kwargs["timings"] = Timings(**d["timings"])
        if "energy" in d:
            kwargs["energy"] = Energy(**d["energy"])
        if "predicted" in d:
            kwargs["predicted"] = Predicted(**d["predicted"])
        return cls(**kwargs)
