"""The edge server under a controller: its measured profile, and applying pushed configs."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import numpy as np

from edge_server.compute import run_server_part
from edge_server.registry import Served
from splitbed.control import Applied, ControlLink
from splitbed.model import split_table
from splitbed.stage import best_flops_per_s, memory_values
from splitbed.v1 import control_pb2

if TYPE_CHECKING:
    from edge_server.server import EdgeServer

logger = logging.getLogger(__name__)


class ServerNode:
    def __init__(self, edge: EdgeServer) -> None:
        self.edge = edge

    def _achieved_flops_per_s(self) -> float:
        """Timed runs of the served part as it is now (clock cap and emulation included)."""
        served = self.edge.registry.current
        seq = self.edge.settings.profile_seq_len
        if served is None or served.flops(seq) == 0:
            return 0.0
        hidden = np.random.default_rng(0).standard_normal((1, seq, self.edge.source.hidden_size)).astype(np.float32)
        mask = np.ones((1, seq), np.int64)
        flops = served.flops(seq)
        return best_flops_per_s(lambda: run_server_part(served.part, hidden, mask, 0.0, self.edge.stage, flops), flops)

    async def profile(self) -> control_pb2.NodeProfile:
        edge = self.edge
        seq = edge.settings.profile_seq_len
        achieved = await asyncio.to_thread(self._achieved_flops_per_s)
        compute = edge.stage.compute_profile(achieved)
        if compute.flops_per_cycle <= 0 and edge.stage.flops_per_cycle:
            compute.flops_per_cycle = edge.stage.flops_per_cycle
        table = split_table(edge.source, seq)
        return control_pb2.NodeProfile(
            model=edge.settings.model, n_layers=edge.source.n_layers, seq_len=seq, compute=compute,
            random_init=edge.source.random_init,
            splits=[control_pb2.SplitCost(split=t.split, device_flops=t.device_flops, server_flops=t.server_flops,
                                          device_params=t.device_prunable, server_params=t.server_prunable)
                    for t in table],
        )

    async def report_forever(self, link: ControlLink, every_s: float = 5.0) -> None:
        """Periodic telemetry: requests served, memory; lost silently while the controller is away."""
        while True:
            await asyncio.sleep(every_s)
            servicer = self.edge.servicer
            values, sources = memory_values()
            values["requests_served"] = float(servicer.requests_served if servicer else 0)
            sources["requests_served"] = "counted"
            await link.report(values, sources)

    async def apply(self, config: control_pb2.Config) -> Applied:
        edge = self.edge
        k = config.knobs
        method = config.method or edge.settings.method
        served: Served = await asyncio.to_thread(edge.load, config.version, k.split, k.rho_server, method)
        freq, freq_source = await asyncio.to_thread(edge.stage.apply_freq, k.freq_server_hz, "server")
        edge.registry.install(served)
        edge.metrics.applied(config.version, {"split": k.split, "rho_server": served.part.report.achieved_rho,
                                              "freq_server_hz": freq})
        sources = {"rho_server": f"achieved ({method})", "split": "applied", "freq_server_hz": freq_source}
        return Applied(
            knobs=control_pb2.Knobs(split=k.split, rho_device=k.rho_device,
                                    rho_server=served.part.report.achieved_rho, power_w=k.power_w,
                                    freq_device_hz=k.freq_device_hz, freq_server_hz=freq),
            sources=sources,
        )
