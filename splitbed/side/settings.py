"""Settings both sides share; the agent and the server subclass it with their own env prefix and fields."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from splitbed.kinds import PruneMethod, TorchDevice
from splitbed.tls import TLS_CA_FIELD, TLS_CERT_FIELD, TLS_KEY_FIELD, TOKEN_FIELD, TOKEN_FILE_FIELD


class SideSettings(BaseSettings):
    """Model, pruning, compute hardware and controller fields of one side of the split (every field has a unit)."""

    model: str = Field("minilm", description="Model: 'minilm' (real all-MiniLM-L6-v2 weights), 'bert-base' "
                       "(random init, timing only) or a local Hugging Face BERT folder.")
    split: int = Field(3, ge=0, description="Split point L (layers): the device runs embeddings + layers [0, L).")
    rho: float = Field(1.0, gt=0.0, le=1.0, description="Kept fraction of this side's prunable parameters "
                       "(1 = dense).")
    method: PruneMethod = Field("structured-magnitude", description="Pruning method.")
    device: TorchDevice = Field("cpu", description="Torch device for model compute.")
    threads: int = Field(0, ge=0, description="torch intra-op threads (0 = one per pinned core with --cpus, "
                         "else torch's default).")
    cpus: str | None = Field(None, description="Cores to pin this process to: a Linux cpu list such as '0' or "
                             "'2-3', or 'auto' (agent: lower half of the allowed cores, server: upper half, for "
                             "an agent and a server sharing a host); unset = no pinning.")
    max_message_bytes: int = Field(64 * 1024 * 1024, gt=0, description="Largest gRPC message, bytes.")
    seed: int = Field(0, description="Seed for random pruning methods.")
    controller: str | None = Field(None, description="Controller gRPC address host:port; unset = standalone.")
    node_id: str = Field("node-0", description="Name under which this process registers with the controller.")
    keepalive_s: float = Field(20.0, gt=0, description="HTTP/2 keepalive ping interval on the gRPC channels, "
                               "seconds.")
    keepalive_timeout_s: float = Field(10.0, gt=0, description="Keepalive ping answer timeout, seconds.")
    control_timeout_s: float = Field(10.0, gt=0, description="Deadline of each unary control RPC (register, "
                                     "ack, telemetry), seconds.")

    # Hardware knobs (see docs/architecture.md): the clock cap f and the energy meter of this side's compute.
    clock: str = Field("none", description="Clock backend: none (host speed, no cap) | auto | cpufreq | nvml | "
                       "jetson | emulated (compute stretched to a named profile).")
    clock_profile: str = Field("paper-device", description="Profile an emulated clock stretches compute to.")
    energy: str = Field("model", description="Energy meter: auto | rapl | nvml | jetson | model (paper formula).")
    host_flops_per_s: float | None = Field(None, gt=0, description="This host's FLOP/s for the emulated clock's "
                                           "check (unset = measured at start with a matmul benchmark).")
    pue: float = Field(1.0, gt=0, description="Power usage effectiveness eta of this side (dimensionless).")
    power_coeff: float = Field(5e-29, gt=0, description="Power coefficient phi of this side, W/(cycle/s)^3.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve Prometheus /metrics on this port (0 = free port; unset = off)."
    )
    tls_cert: str | None = TLS_CERT_FIELD
    tls_key: str | None = TLS_KEY_FIELD
    tls_ca: str | None = TLS_CA_FIELD
    token: str | None = TOKEN_FIELD
    token_file: str | None = TOKEN_FILE_FIELD
