"""The agent under a controller: its measured profile, applying pushed configs, telemetry every N requests."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from device_agent.channel_estimate import steady_rate_bps
from device_agent.fixed_cost import FROM_REQUESTS, FixedCost, probe_s
from device_agent.on_device import NOTHING_UPLOADED
from device_agent.record import RequestRecord
from device_agent.runner import DeviceRunner, PartState
from device_agent.settings import AgentSettings
from device_agent.uplink import Uplink
from splitbed.hw.memory import memory_values
from splitbed.kinds import as_encoding
from splitbed.metrics import Metrics
from splitbed.model import DevicePart, ModelSource
from splitbed.node_contract import Applied, Telemetry
from splitbed.side.applied import apply_part_and_clock
from splitbed.side.hardware import ComputeHardware
from splitbed.side.profile import measure_compute, node_profile
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

PROFILE_SEQ_LEN = 128  # FLOPs and payload are profiled at the agent's --seq-len, else at this length


class PartHolder(Protocol):
    """Where the part requests are made with lives; `state` is replaced whole to switch."""

    state: PartState

    def load_part(self, split: int, rho: float, method: str) -> DevicePart: ...


@dataclass(kw_only=True)
class DeviceNode:
    """Meets `splitbed.node_contract.ControlledNode` for the device agent."""

    settings: AgentSettings
    source: ModelSource
    parts: PartHolder
    hw: ComputeHardware
    uplink: Uplink
    ping: Callable[[], Awaitable[Any]]  # one round trip to the edge server
    metrics: Metrics
    _window: list[RequestRecord] = field(default_factory=list, init=False)
    fixed: FixedCost = field(default_factory=FixedCost, init=False)  # T_fix, what no modelled stage covers
    slot: tuple[float, float] = field(default=(0.0, 0.0), init=False)  # the plan's (period_s, slot_offset_s)

    @classmethod
    def of(cls, runner: DeviceRunner) -> DeviceNode:
        """The node for a runner, given only the collaborators it needs."""
        return cls(settings=runner.settings, source=runner.source, parts=runner, hw=runner.hw, uplink=runner.uplink,
                   ping=runner.client.info, metrics=runner.metrics)

    @property
    def seq_len(self) -> int:
        return self.settings.seq_len or PROFILE_SEQ_LEN

    async def profile(self) -> control_pb2.NodeProfile:
        compute = await measure_compute(self.hw, self.parts.state.part, self.seq_len)
        profile = node_profile(model=self.settings.model, source=self.source, seq_len=self.seq_len,
                               compute=compute, encoding=self.parts.state.encoding,
                               link=await self.uplink.profile(self.ping))
        # Which edge server's group the controller plans this device in (controller/association.py).
        profile.server_node_id = self.settings.server_node or ""
        profile.server_address = self.settings.server
        if self.fixed.estimate() is None:
            self.fixed.probed_s = await probe_s(self.ping, self.source.hidden_size, self.seq_len,
                                                self.parts.state.encoding)
        fixed = self.fixed.estimate()
        if fixed is not None:
            profile.fixed_latency_s, profile.fixed_latency_source = fixed
        return profile

    async def apply(self, config: control_pb2.Config) -> Applied:
        old = self.parts.state

        def load(split: int, rho: float, method: str) -> DevicePart:
            # Loaded beside the running part; requests keep using the old one until the swap below.
            if (split, method, rho) == (old.split, old.method, old.rho_device):
                return old.part
            return self.parts.load_part(split, rho, method)

        values, part, method = await apply_part_and_clock(config, "device", self.hw, load, old.method)
        k = config.knobs
        power = k.power_w
        if power > 0:
            link = await asyncio.to_thread(self.uplink.apply_power, power)  # tc / iw block: off the event loop
            power = link.power_w
            values.record("power_w", power, link.rate_source or link.backend)
        elif k.split >= self.source.n_layers:
            values.record("power_w", 0.0, NOTHING_UPLOADED)  # L = n: the radio has nothing to send
        self.parts.state = dataclasses.replace(
            old, part=part, split=k.split, rho_device=k.rho_device, rho_server=k.rho_server, method=method,
            encoding=as_encoding(config.encoding or old.encoding), version=config.version, predicted=config.predicted,
            power_w=power,
        )
        self.slot = (config.period_s, config.slot_offset_s)
        self.metrics.applied(config.version, {**values.values, "power_w": power})
        return values.applied()

    def observe(self, record: RequestRecord) -> None:
        """Add a finished request to the telemetry window and to the T_fix estimate."""
        self._window.append(record)
        self.fixed.observe(record)

    def telemetry(self) -> Telemetry | None:
        """Every `telemetry_every` requests: medians over the window, the upload rate, memory."""
        if len(self._window) < self.settings.telemetry_every:
            return self._first_fixed_cost()
        window, self._window = self._window, []
        timings = [dataclasses.asdict(r.timings) for r in window]
        t = {k: statistics.median(r[k] for r in timings) for k in timings[0]}
        values = {f"{k.removesuffix('_s')}_p50_s": v for k, v in t.items()}
        values["requests"] = float(len(window))
        sources = {"*_p50_s": "measured:perf_counter, median over the window"}
        self._rate(window, values, sources)
        mem, mem_sources = memory_values()
        values.update(mem)
        sources.update(mem_sources)
        errs = [r.prediction_error for r in window if r.prediction_error is not None]
        if errs:
            values["latency_prediction_error_p50"] = statistics.median(errs)
        fixed = self.fixed.estimate()
        if fixed is not None:
            values["fixed_latency_s"], sources["fixed_latency_s"] = fixed
            self.fixed.reported_from_requests = fixed[1] == FROM_REQUESTS
        return Telemetry(values, sources)

    def _first_fixed_cost(self) -> Telemetry | None:
        """T_fix as soon as requests have measured it: the profile only had the probe's lower bound."""
        fixed = self.fixed.estimate()
        if fixed is None or fixed[1] != FROM_REQUESTS or self.fixed.reported_from_requests:
            return None
        self.fixed.reported_from_requests = True
        return Telemetry({"fixed_latency_s": fixed[0]}, {"fixed_latency_s": fixed[1]})

    def _rate(self, window: list[RequestRecord], values: dict[str, float], sources: dict[str, str]) -> None:
        # Only the uploads made at the power applied now, with the shaper's bucket allowed for.
        latest = max(r.config_version for r in window)
        uploads = [(r.payload_bytes, r.timings.upload_pacing_s if self.uplink.paced else r.timings.transfer_s)
                   for r in window if r.config_version == latest]
        rate = steady_rate_bps(uploads, self.uplink.burst_bytes())
        if rate is None:
            return
        self.uplink.measured_rate_bps = rate
        values["rate_bps"] = rate
        sources["rate_bps"] = "measured: fastest (payload - bucket) bits / upload time, one plan's sustained uploads"
        gain = self.uplink.gain_estimate(rate)
        if gain is not None:
            values["gain"] = gain
            sources["gain"] = "estimated: r(p) inverted at the applied power from the measured upload rate"
