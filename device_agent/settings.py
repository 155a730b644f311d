"""Device agent settings; every field can be set as AGENT_<NAME> in the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from splitbed.kinds import Encoding
from splitbed.side.settings import SideSettings


class AgentSettings(SideSettings):
    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore")

    server: str = Field("127.0.0.1:50051", description="Edge server gRPC address host:port; with a controller "
                        "it also puts the agent in the group of the edge server registered at this address.")
    server_node: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="With a controller: the node id of the "
        "edge server this agent belongs to (its --node-id), for when --server is not the address that server "
        "registered (NAT, a DNS or Service name); unset = matched by --server.")
    rho_server: float | None = Field(
        None, gt=0.0, le=1.0, description="Server ratio the requests ask for (unset = whatever the server serves)."
    )
    encoding: Encoding = Field("fp32", description="Uplink encoding of the hidden state.")
    texts: str | None = Field(None, description="Input file, one text per line (unset = built-in sample).")
    out: str = Field("results.jsonl", description="Output JSONL file, one record per input.")
    reference: bool = Field(False, description="Also compare with the unpruned, unsplit model (cosine, l2).")
    seq_len: int | None = Field(
        None, gt=0, description="Pad/truncate every input to this many tokens (unset = natural length)."
    )
    repeat: int = Field(1, ge=1, description="Run the inputs this many times (timings of every run are written).")
    warmup: int = Field(2, ge=0, description="Untimed requests sent before the run (not written).")
    rate: float | None = Field(
        None, gt=0.0, le=1000.0, description="Open loop: requests per second, each started at the plan's slot "
        "offset in its period (unset = closed loop, one request after another).")
    timeout_s: float = Field(30.0, gt=0, description="Per-request deadline, seconds.")
    resume: bool = Field(False, description="Continue a killed run into --out, skipping requests already written.")
    run_id: str | None = Field(None, max_length=128, description="Idempotent run id sent with every request "
                               "(unset = a new uuid, or the one in --out with --resume).")
    fsync_every: int = Field(20, ge=1, description="fsync the records file at least every N records.")
    reconnect_max_outage_s: float = Field(60.0, gt=0, description="Give up after the edge server has been "
                                          "unreachable this long, seconds.")
    reconnect_backoff_s: float = Field(0.1, gt=0, description="First wait before resending, seconds (doubles).")
    reconnect_backoff_max_s: float = Field(2.0, gt=0, description="Largest wait between resends, seconds.")
    node_id: str = Field("device-0", description="Name under which the agent registers with the controller.")
    quiet: bool = Field(False, description="Do not print the summary table.")

    # The radio uplink: transmit power p via the link backend, and the channel it is planned for.
    link: str = Field("pacer", description="Uplink backend: pacer (emulated, default) | tbf | iw.")
    link_dev: str | None = Field(None, description="Network interface for the tbf / iw link backends.")
    link_queue_bytes: int = Field(4 * 1024 * 1024, ge=0, description="tbf only: least bytes its queue holds, B "
                                  "(the default is Linux's default tcp_wmem maximum; raise it above the largest "
                                  "upload in flight, or tbf drops its tail and each drop costs a retransmit).")
    power_w: float | None = Field(None, gt=0, description="Transmit power p, W (unset = no pacing standalone).")
    p_max_w: float = Field(0.5, gt=0, description="Largest transmit power P_max, W.")
    bandwidth_hz: float = Field(5e6, gt=0, description="Uplink bandwidth B, Hz.")
    noise_psd_w_per_hz: float = Field(2e-19, gt=0, description="Noise power spectral density N0, W/Hz.")
    distance_m: float = Field(500.0, gt=0, description="Device-server distance d for the path-loss gain, m.")
    k0_db: float = Field(-30.0, description="Path loss K0 at d0 = 1 m, dB.")
    path_loss_exponent: float = Field(2.8, gt=0, description="Path-loss exponent alpha.")
    telemetry_every: int = Field(20, ge=1, description="Report telemetry to the controller every N requests.")
    wait_config_s: float = Field(120.0, gt=0, description="With a controller: wait this long for the first plan, s.")
    host: str = Field("127.0.0.1", description="Address the /metrics listener binds (0.0.0.0 = every interface).")
