"""Controller settings; every field can be set as CONTROLLER_<NAME> in the environment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from splitbed.kinds import Encoding, PruneMethod
from splitbed.tls import TLS_CA_FIELD, TLS_CERT_FIELD, TLS_KEY_FIELD


class ControllerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTROLLER_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address both APIs (and /metrics) bind; 0.0.0.0 = every interface.")
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
    push_retry_s: float = Field(5.0, gt=0, description="After a push to a changed group failed (a device "
                                "joined or left, a profile changed), re-plan that group after this long, s; "
                                "the wait doubles after each failed try, up to 60 s.")
    drift_threshold: float = Field(0.2, gt=0, description="Re-plan when the uplink rate at the planned power "
                                   "(r(p) from the estimated channel gain) drifts by this fraction.")
    drift_confirm: int = Field(2, ge=1, description="Consecutive telemetry reports beyond the drift threshold "
                               "before a drift re-plan (count).")
    drift_min_interval_s: float = Field(10.0, ge=0, description="Least time between two drift re-plans of one "
                                        "device, seconds.")
    grace_s: float = Field(3.0, ge=0, description="Shutdown grace period, seconds.")
    state: str = Field("controller-state.sqlite", description="SQLite file keeping budget, pins, plans and nodes "
                       "across restarts (':memory:' = keep nothing).")
    node_ttl_s: float = Field(60.0, gt=0, description="A node silent (no config stream, no call) this long, seconds, "
                              "is stale: left out of planning, and the first to go when max_nodes is reached.")
    max_nodes: int = Field(256, ge=2, description="Most registered nodes; further registrations are refused.")
    max_body_bytes: int = Field(1 << 20, gt=0, description="Largest REST request body, bytes (larger: 413).")
    max_splits: int = Field(256, ge=1, le=4096, description="Most candidate splits in one problem.")
    solve_workers: int = Field(1, ge=1, description="Processes serving stateless solves (apart from the live "
                               "planner's thread).")
    solve_queue: int = Field(4, ge=0, description="Stateless solves waiting beyond the busy workers before 429.")
    sca_max_iterations: int = Field(150, ge=1, le=10_000, description="SCA iteration cap per split.")
    sca_time_limit_s: float = Field(20.0, gt=0, description="SCA wall-clock cap per problem, seconds.")
    tls_cert: str | None = TLS_CERT_FIELD
    tls_key: str | None = TLS_KEY_FIELD
    tls_ca: str | None = TLS_CA_FIELD
    token_file: str | None = Field(None, description="'ROLE TOKEN' lines (ROLE = admin | node:<id>); set = REST "
                                   "writes and every gRPC control call need a bearer token.")
    auth_reads: bool = Field(False, description="With --token-file: REST reads (plan, nodes, pins, metrics) need "
                             "a token too.")
