"""Settings fields shared by the agent and the server (each has its own class and env prefix)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

PruneMethod = Literal["structured-magnitude", "structured-random", "unstructured-magnitude", "unstructured-random"]
Encoding = Literal["fp32", "fp16", "int8"]
TorchDevice = Literal["cpu", "cuda"]

MODEL_FIELD = Field("minilm", description="Model: 'minilm' (real all-MiniLM-L6-v2 weights), 'bert-base' (random "
                    "init, timing only) or a local Hugging Face BERT folder.")
SPLIT_FIELD = Field(3, ge=0, description="Split point L (layers): the device runs embeddings + layers [0, L).")
RHO_FIELD = Field(1.0, gt=0.0, le=1.0, description="Kept fraction of this side's prunable parameters (1 = dense).")
METHOD_FIELD = Field("structured-magnitude", description="Pruning method.")
DEVICE_FIELD = Field("cpu", description="Torch device for model compute.")
THREADS_FIELD = Field(0, ge=0, description="torch intra-op threads (0 = torch's default).")

CLOCK_FIELD = Field("none", description="Clock backend: none (host speed, no cap) | auto | cpufreq | nvml | jetson | "
                    "emulated (compute stretched to a named profile).")
ENERGY_FIELD = Field("model", description="Energy meter: auto | rapl | nvml | jetson | model (paper formula).")
PUE_FIELD = Field(1.0, gt=0, description="Power usage effectiveness eta of this side (dimensionless).")
PHI_FIELD = Field(5e-29, gt=0, description="Power coefficient phi of this side, W/(cycle/s)^3.")
HOST_FLOPS_FIELD = Field(None, gt=0, description="This host's FLOP/s for the emulated clock's check (unset = "
                         "measured at start with a matmul benchmark).")
