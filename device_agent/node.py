"""The agent under a controller: its measured profile, and applying pushed configs."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from typing import Any

import torch

from device_agent.runner import DeviceRunner, PartState
from splitbed.channel import gain_from_distance, gain_from_rate
from splitbed.control import Applied
from splitbed.model import payload_bytes, split_table
from splitbed.stage import best_flops_per_s, memory_values
from splitbed.v1 import control_pb2

logger = logging.getLogger(__name__)

PROFILE_SEQ_LEN = 128  # FLOPs and payload are profiled at the agent's --seq-len, else at this length


class DeviceNode:
    def __init__(self, runner: DeviceRunner) -> None:
        self.runner = runner
        self.settings = runner.settings
        self.applied_power_w = runner.state.power_w
        self.applied_rate_bps = 0.0
        self.measured_rate_bps = 0.0
        self._window: list[dict[str, Any]] = []

    @property
    def seq_len(self) -> int:
        return self.settings.seq_len or PROFILE_SEQ_LEN

    def gain(self) -> float:
        s = self.settings
        return gain_from_distance(s.distance_m, s.k0_db, s.path_loss_exponent)

    def _achieved_flops_per_s(self) -> float:
        """Timed runs of the device part as it is now (clock cap and emulation included)."""
        runner = self.runner
        state = runner.state
        flops = state.flops(self.seq_len)
        if flops == 0:
            return 0.0
        ids = torch.full((1, self.seq_len), 1000, dtype=torch.long)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
        return best_flops_per_s(lambda: runner._front(state, inputs), flops)

    async def profile(self) -> control_pb2.NodeProfile:
        s = self.settings
        runner = self.runner
        table = split_table(runner.source, self.seq_len)
        encoding = runner.state.encoding
        achieved = await asyncio.to_thread(self._achieved_flops_per_s)
        rtts = []
        for _ in range(5):
            t0 = time.perf_counter()
            await runner.client.info()
            rtts.append(time.perf_counter() - t0)
        compute = runner.stage.compute_profile(achieved)
        if compute.flops_per_cycle <= 0 and runner.stage.flops_per_cycle:
            compute.flops_per_cycle = runner.stage.flops_per_cycle
        return control_pb2.NodeProfile(
            model=s.model, n_layers=runner.source.n_layers, seq_len=self.seq_len, encoding=encoding,
            random_init=runner.source.random_init,
            splits=[
                control_pb2.SplitCost(
                    split=t.split, device_flops=t.device_flops, server_flops=t.server_flops,
                    device_params=t.device_prunable, server_params=t.server_prunable,
                    payload_bits=8 * payload_bytes(runner.source.hidden_size, self.seq_len, encoding),
                )
                for t in table
            ],
            compute=compute,
            link=control_pb2.LinkProfile(
                backend=runner.link.name, bandwidth_hz=s.bandwidth_hz, noise_psd_w_per_hz=s.noise_psd_w_per_hz,
                gain=self.gain(), p_max_w=s.p_max_w, applied_power_w=self.applied_power_w,
                measured_rate_bps=self.measured_rate_bps or self.applied_rate_bps, rtt_s=statistics.median(rtts),
            ),
        )

    async def apply(self, config: control_pb2.Config) -> Applied:
        runner = self.runner
        k = config.knobs
        old = runner.state
        method = config.method or old.method
        encoding = config.encoding or old.encoding
        part = old.part
        if (k.split, method, k.rho_device) != (old.split, old.method, old.rho_device):
            # Loaded beside the running part; requests keep using the old one until the swap below.
            part = await asyncio.to_thread(runner.load_part, k.split, k.rho_device, method)
        freq, freq_source = await asyncio.to_thread(runner.stage.apply_freq, k.freq_device_hz, "device")
        sources = {"rho_device": f"achieved ({method})", "split": "applied", "freq_device_hz": freq_source}
        power = k.power_w
        if power > 0:
            link = await asyncio.to_thread(runner.apply_power, power)  # tc / iw block: off the event loop
            power = link.power_w
            self.applied_power_w, self.applied_rate_bps = link.power_w, link.rate_bps
            sources["power_w"] = link.rate_source or link.backend
        runner.state = PartState(
            part=part, model=old.model, split=k.split, rho_device=k.rho_device, rho_server=k.rho_server,
            method=method, encoding=encoding, version=config.version, predicted=config.predicted,
            power_w=power,
        )
        runner.metrics.applied(config.version, {"split": k.split, "rho_device": part.report.achieved_rho,
                                                "power_w": power, "freq_device_hz": freq})
        return Applied(
            knobs=control_pb2.Knobs(split=k.split, rho_device=part.report.achieved_rho, rho_server=k.rho_server,
                                    power_w=power, freq_device_hz=freq, freq_server_hz=k.freq_server_hz),
            sources=sources,
        )

    def _gain_estimate(self, rate: float) -> float | None:
        """g from the measured rate, or None when the rate says nothing about the channel.

        A rate far above r(P_max) of the configured link (e.g. an unshaped
        loopback) would invert to an absurd gain; it is not reported.
        """
        s = self.settings
        if self.applied_power_w <= 0 or rate > 64 * s.bandwidth_hz:
            return None
        try:
            return gain_from_rate(rate, self.applied_power_w, s.bandwidth_hz, s.noise_psd_w_per_hz)
        except (OverflowError, ValueError):
            return None

    def telemetry(self, rec: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]] | None:
        """Accumulate records; every `telemetry_every` return medians to report."""
        self._window.append(rec)
        if len(self._window) < self.settings.telemetry_every:
            return None
        window, self._window = self._window, []
        t = {k: statistics.median(r["timings"][k] for r in window) for k in window[0]["timings"]}
        values = {f"{k.removesuffix('_s')}_p50_s": v for k, v in t.items()}
        values["requests"] = float(len(window))
        sources = {"*_p50_s": "measured:perf_counter, median over the window"}
        payload_bits = 8.0 * statistics.median(r["payload_bytes"] for r in window)
        upload_s = t["upload_pacing_s"] if self.runner.paced else t["transfer_s"]
        if upload_s > 0:
            rate = payload_bits / upload_s
            self.measured_rate_bps = rate
            values["rate_bps"] = rate
            sources["rate_bps"] = "measured: payload bits / upload time, median over the window"
            gain = self._gain_estimate(rate)
            if gain is not None:
                values["gain"] = gain
                sources["gain"] = "estimated: r(p) inverted at the applied power from the measured upload rate"
        mem, mem_sources = memory_values()
        values.update(mem)
        sources.update(mem_sources)
        errs = [r["prediction_error"] for r in window if r.get("prediction_error") is not None]
        if errs:
            values["latency_prediction_error_p50"] = statistics.median(errs)
        return values, sources

