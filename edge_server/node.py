"""The edge server under a controller: its measured profile, applying pushed configs, periodic telemetry."""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge_server.compute import PartLoader
from edge_server.registry import PartRegistry, Served
from edge_server.settings import EdgeSettings
from splitbed.hw.memory import memory_values
from splitbed.metrics import Metrics
from splitbed.model import ServerPart
from splitbed.node_contract import Applied, Telemetry
from splitbed.side.applied import apply_part_and_clock
from splitbed.side.hardware import ComputeHardware
from splitbed.side.profile import measure_compute, node_profile
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)


class ServerNode:
    """Meets `splitbed.node_contract.ControlledNode` for the edge server."""

    def __init__(self, settings: EdgeSettings, *, registry: PartRegistry, loader: PartLoader, hw: ComputeHardware,
                 metrics: Metrics, requests_served: Callable[[], int]) -> None:
        self.settings = settings
        self.registry = registry
        self.loader = loader
        self.hw = hw
        self.metrics = metrics
        self.requests_served = requests_served

    async def profile(self) -> control_pb2.NodeProfile:
        seq = self.settings.profile_seq_len
        served = self.registry.current
        lens = [int(n) for n in self.settings.profile_seq_lens.split(",") if n.strip()]
        lens = [n for n in lens if 0 < n <= self.loader.source.max_seq_len]
        compute = await measure_compute(self.hw, served.part if served is not None else None, seq, lens)
        return node_profile(model=self.settings.model, source=self.loader.source, seq_len=seq, compute=compute)

    def telemetry(self) -> Telemetry:
        """Requests served and memory (the control client reports it every few seconds)."""
        values, sources = memory_values()
        values["requests_served"] = float(self.requests_served())
        sources["requests_served"] = "counted"
        return Telemetry(values, sources)

    def _part(self, split: int, rho: float, method: str) -> ServerPart:
        """Devices with the same (split, rho~, method) share one loaded part."""
        shared: ServerPart | None = self.registry.part_for(split, rho, method)
        return shared if shared is not None else self.loader.part(split, rho, method)

    async def apply(self, config: control_pb2.Config) -> Applied:
        values, part, method = await apply_part_and_clock(config, "server", self.hw, self._part,
                                                          self.settings.method)
        k = config.knobs
        self.registry.install(Served(version=config.version, model=self.settings.model, split=k.split,
                                     rho=k.rho_server, method=method, part=part), set(config.live_versions))
        self.metrics.applied(config.version, values.values)
        return values.applied()
