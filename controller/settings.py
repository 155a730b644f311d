"""Controller settings; every field can be set as CONTROLLER_<NAME> in the environment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from splitbed.kinds import Encoding, PruneMethod


class ControllerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTROLLER_", extra="ignore")

    host: str = Field("0.0.0.0", description="Address both APIs bind.")
    grpc_port: int = Field(50052, ge=0, le=65535, description="gRPC control service port (0 = free port).")
    rest_port: int = Field(8080, ge=0, le=65535, description="REST API port (0 = free port).")
    port_file: str | None = Field(None, description="Write 'GRPC_PORT REST_PORT' here once serving.")
    latency_budget_s: float = Field(0.25, gt=0, description="Latency budget T0 of the live system, seconds.")
    energy_budget_j: float = Field(0.5, gt=0, description="Energy budget E0 of the live system, joules.")
    solver: Literal["exact", "sca"] = Field("exact", description="Solver used for live plans.")
    scheme: str = Field("joint", description="Scheme for live plans (joint or a paper benchmark).")
    method: PruneMethod = Field("structured-magnitude", description="Pruning method pushed with every plan.")
    encoding: Encoding | None = Field(
        None, description="Uplink encoding pushed with every plan (unset = each agent keeps its own, which its "
        "profile's payload sizes were computed for).")
    rho_min_device: float = Field(0.3, ge=0, le=1, description="Floor on the device kept ratio (quality guard).")
    rho_min_server: float = Field(0.3, ge=0, le=1, description="Floor on the server kept ratio (quality guard).")
    bits_per_param: float = Field(32.0, gt=0, description="Bits per stored parameter b of the bound.")
    entropy_bits_per_param: float = Field(-2.0, description="Differential entropy h per parameter, bits.")
    ack_timeout_s: float = Field(60.0, gt=0, description="How long to wait for the server to apply a plan, s.")
    drift_threshold: float = Field(0.2, gt=0, description="Re-plan when the channel gain drifts by this fraction.")
    drift_confirm: int = Field(2, ge=1, description="Consecutive telemetry reports beyond the drift threshold "
                               "before a drift re-plan (count).")
    drift_min_interval_s: float = Field(10.0, ge=0, description="Least time between two drift re-plans of one "
                                        "device, seconds.")
    grace_s: float = Field(3.0, ge=0, description="Shutdown grace period, seconds.")
