"""Edge server settings; every field can be set as EDGE_<NAME> in the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from splitbed.side.settings import SideSettings


class EdgeSettings(SideSettings):
    model_config = SettingsConfigDict(env_prefix="EDGE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address gRPC and /metrics bind (0.0.0.0 = every interface).")
    port: int = Field(50051, ge=0, le=65535, description="TCP port (0 = pick a free one and print it).")
    workers: int = Field(1, ge=1, description="Compute worker threads (requests beyond queue).")
    max_batch: int = Field(64, gt=0, description="Largest batch (sequences) per request.")
    grace_s: float = Field(5.0, ge=0, description="Shutdown grace period for in-flight streams, seconds.")
    decode_workers: int = Field(2, ge=1, description="Threads that decode and validate requests off the event loop.")
    max_streams: int = Field(16, ge=1, description="Open inference streams in total, count.")
    max_streams_per_peer: int = Field(4, ge=1, description="Open inference streams per client connection, count.")
    max_pending: int = Field(16, ge=1, description="Requests received and not yet answered, count.")
    max_pending_bytes: int = Field(256 * 1024 * 1024, gt=0, description="Tensor bytes of pending requests, bytes.")
    compute_chunk_tokens: int = Field(256, gt=0, description="Batches run as row chunks of at most this many "
                                      "tokens, one fair turn each (bounds another client's wait), tokens.")
    retry_after_s: float = Field(0.5, ge=0, description="Retry hint sent with RESOURCE_EXHAUSTED, seconds.")
    node_id: str = Field("edge-0", description="Name under which the server registers with the controller.")
    clock_profile: str = Field("edge-cpu", description="Profile an emulated clock stretches compute to.")
    pue: float = Field(2.0, gt=0, description="Power usage effectiveness eta~ of the edge site (dimensionless).")
    power_coeff: float = Field(1e-28, gt=0, description="Power coefficient phi~ of the server, W/(cycle/s)^3.")
    profile_seq_len: int = Field(128, gt=0, description="Sequence length at which compute is profiled, tokens.")
    port_file: str | None = Field(None, description="Write the bound port to this file once serving.")
