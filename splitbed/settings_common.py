"""Settings fields shared by the agent and the server (each has its own class and env prefix)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from splitbed.kinds import Encoding, PruneMethod, TorchDevice

__all__ = ["Encoding", "PruneMethod", "TorchDevice"]

MODEL_FIELD: Any = Field("minilm", description="Model: 'minilm' (real all-MiniLM-L6-v2 weights), 'bert-base' (random "
                    "init, timing only) or a local Hugging Face BERT folder.")
SPLIT_FIELD: Any = Field(3, ge=0, description="Split point L (layers): the device runs embeddings + layers [0, L).")
RHO_FIELD: Any = Field(1.0, gt=0.0, le=1.0, description="Kept fraction of this side's prunable parameters (1 = dense).")
METHOD_FIELD: Any = Field("structured-magnitude", description="Pruning method.")
DEVICE_FIELD: Any = Field("cpu", description="Torch device for model compute.")
THREADS_FIELD: Any = Field(0, ge=0, description="torch intra-op threads (0 = torch's default).")

CLOCK_FIELD: Any = Field(
    "none",
    description="Clock backend: none (host speed, no cap) | auto | cpufreq | nvml | jetson | "
    "emulated (compute stretched to a named profile).",
)
ENERGY_FIELD: Any = Field("model", description="Energy meter: auto | rapl | nvml | jetson | model (paper formula).")
PUE_FIELD: Any = Field(1.0, gt=0, description="Power usage effectiveness eta of this side (dimensionless).")
PHI_FIELD: Any = Field(5e-29, gt=0, description="Power coefficient phi of this side, W/(cycle/s)^3.")
HOST_FLOPS_FIELD: Any = Field(None, gt=0, description="This host's FLOP/s for the emulated clock's check (unset = "
                         "measured at start with a matmul benchmark).")
