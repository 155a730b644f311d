"""The agent's work loop: tokenize, run the front layers, encode, stream, collect timed records."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from device_agent.client import InferenceClient
from device_agent.resilient import ResilientClient, RetryPolicy, redo_on_new_plan
from device_agent.settings import AgentSettings
from splitbed.channel import gain_from_distance
from splitbed.codec import Limits, decode, encode_float, encode_raw
from splitbed.errors import FailedPrecondition
from splitbed.hw.energy import upload_energy
from splitbed.hw.link import LinkBackend, PacerLink, make_link
from splitbed.metrics import Metrics
from splitbed.model import DevicePart, load_device_part, load_tokenizer, profile_part, resolve_model, tokenize
from splitbed.resilience import Keepalive
from splitbed.stage import Stage
from splitbed.v1 import control_pb2, inference_pb2

logger = logging.getLogger(__name__)

# Where each timing comes from; written into every record.
TIMING_SOURCES = {
    "device_compute_s": "measured:perf_counter (device process; + emulated stretch when the clock is emulated)",
    "encode_s": "measured:perf_counter (device process)",
    "upload_pacing_s": "measured:perf_counter (time the link backend held the upload)",
    "transfer_s": "derived: request sent -> answer received, minus server_total (includes upload pacing)",
    "server_compute_s": "measured:perf_counter (edge process; + emulated stretch when the clock is emulated)",
    "server_other_s": "measured:perf_counter (edge process: decode + queue)",
    "e2e_s": "measured:perf_counter (device process, input ready -> embedding decoded)",
}


@dataclass(frozen=True)
class PartState:
    """Everything a request is made with; replaced as a whole when a config is applied."""

    part: DevicePart
    model: str
    split: int
    rho_device: float
    rho_server: float
    method: str
    encoding: str
    version: int = 0
    predicted: control_pb2.Prediction | None = None
    power_w: float = 0.0
    _flops: dict[int, int] = field(default_factory=dict, compare=False)

    def identity(self) -> inference_pb2.SplitIdentity:
        return inference_pb2.SplitIdentity(
            model=self.model, split=self.split, rho_device=self.rho_device, rho_server=self.rho_server,
            method=self.method, config_version=self.version,
        )

    def flops(self, seq_len: int) -> int:
        if seq_len not in self._flops:
            self._flops[seq_len] = profile_part(self.part, seq_len).flops
        return self._flops[seq_len]


class DeviceRunner:
    """Owns the device part, the stage hardware (clock, energy, link) and the stream to the edge server."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.source = resolve_model(settings.model)
        self.tokenizer = load_tokenizer(self.source)
        part = self.load_part(settings.split, settings.rho, settings.method)
        self.state = PartState(
            part=part, model=settings.model, split=settings.split, rho_device=settings.rho,
            rho_server=settings.rho_server or 0.0, method=settings.method, encoding=settings.encoding,
        )
        self.stage = Stage(settings.clock, settings.clock_profile, settings.energy, pue=settings.pue,
                           phi=settings.power_coeff, host_flops_per_s=settings.host_flops_per_s)
        # burst 1 byte: every upload waits payload/r(p), as the model has it (no idle-time credit).
        link_opts: dict[str, Any] = {"dev": settings.link_dev} if settings.link != "pacer" else {"burst_bytes": 1}
        self.link: LinkBackend = make_link(settings.link, **link_opts)
        if settings.power_w is not None:
            self.apply_power(settings.power_w)
        self.client = InferenceClient(
            settings.server, max_message_bytes=settings.max_message_bytes, timeout_s=settings.timeout_s,
            keepalive=Keepalive(settings.keepalive_s, settings.keepalive_timeout_s, settings.reconnect_backoff_max_s),
        )
        self.run_id = settings.run_id or uuid.uuid4().hex
        self.resilient = ResilientClient(self.client, RetryPolicy(
            settings.reconnect_max_outage_s, settings.reconnect_backoff_s, settings.reconnect_backoff_max_s),
            plan_version=lambda: self.state.version)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="device-compute")
        self._limits = Limits(max_bytes=settings.max_message_bytes)
        self.metrics = Metrics("device")
        if settings.metrics_port is not None:
            self.metrics.serve(settings.metrics_port)

    @property
    def paced(self) -> bool:
        """True when the upload time is the pacer's hold; otherwise the link itself (tbf, a radio) shapes it."""
        return isinstance(self.link, PacerLink)

    def load_part(self, split: int, rho: float, method: str) -> DevicePart:
        part = load_device_part(self.source, split, rho=rho, method=method, device=self.settings.device,
                                seed=self.settings.seed)
        part.eval()
        return part

    def apply_power(self, power_w: float, gain: float | None = None) -> Any:
        s = self.settings
        g = gain if gain is not None else gain_from_distance(s.distance_m, s.k0_db, s.path_loss_exponent)
        applied = self.link.apply(power_w, bandwidth_hz=s.bandwidth_hz, noise_psd=s.noise_psd_w_per_hz, gain=g)
        self.state = dataclasses.replace(self.state, power_w=power_w)
        return applied

    async def connect(self, *, standalone: bool = True) -> inference_pb2.ServerInfo:
        """Wait for the edge server; standalone, also check it serves our split and learn its ratio.

        Under a controller the split and ratios come with the first config instead.
        """
        info = await self.client.wait_ready()
        if info.model and info.model != self.settings.model:
            raise FailedPrecondition(f"edge server serves model {info.model!r}, agent runs {self.settings.model!r}")
        current = max(info.parts, key=lambda p: p.identity.config_version, default=None)
        if standalone and current is not None and self.state.version == 0:
            if current.identity.split != self.state.split:
                raise FailedPrecondition(
                    f"edge server serves split {current.identity.split}, agent was started with --split "
                    f"{self.state.split}; start both with the same split (or use a controller)"
                )
            rho_server = self.settings.rho_server or current.identity.rho_server
            self.state = dataclasses.replace(self.state, rho_server=rho_server,
                                             version=current.identity.config_version)
        return info

    def _front(self, state: PartState, inputs: dict[str, torch.Tensor]) -> tuple[np.ndarray, Any]:
        part = state.part
        device = next(part.parameters()).device
        token_types = inputs.get("token_type_ids")
        started = self.stage.begin()
        with torch.inference_mode():
            hidden = part(
                inputs["input_ids"].to(device),
                inputs["attention_mask"].to(device),
                token_types.to(device) if token_types is not None else None,
            )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            out = hidden.detach().to("cpu", torch.float32).numpy()
        timing = self.stage.finish(started, state.flops(int(inputs["input_ids"].shape[1])))
        return out, timing

    def prepare(self, texts: list[str]) -> list[dict[str, torch.Tensor]]:
        return [
            tokenize(self.tokenizer, [t], self.source.max_seq_len, pad_to=self.settings.seq_len) for t in texts
        ]

    async def infer_one(self, inputs: dict[str, torch.Tensor], request_id: str, seq: int = 0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        state = self.state  # one snapshot: a config switch never mixes versions within a request
        t0 = time.perf_counter()
        hidden, timing = await loop.run_in_executor(self.executor, functools.partial(self._front, state, inputs))
        t1 = time.perf_counter()
        mask = inputs["attention_mask"].numpy().astype(np.uint8)
        request = inference_pb2.InferRequest(
            request_id=request_id,
            identity=state.identity(),
            hidden=encode_float(hidden, state.encoding),
            attention_mask=encode_raw(mask),
            run_id=self.run_id if seq else "",
            seq=seq,
        )
        t2 = time.perf_counter()
        payload = len(request.hidden.data) + len(request.hidden.scales)
        if state.power_w > 0:  # no transmit power applied yet (standalone without --power-w): unpaced
            await self.link.pace(payload)
        t_paced = time.perf_counter()
        request.timings.CopyFrom(
            inference_pb2.DeviceTimings(
                device_compute_s=timing.compute_s, encode_s=t2 - t1, sent_unix_ns=time.time_ns(),
                device_stretch_s=timing.stretch_s,
            )
        )
        response = await self.resilient.infer(request)
        t3 = time.perf_counter()
        embedding = decode(response.embedding, what="embedding", limits=self._limits)
        t4 = time.perf_counter()
        st = response.timings
        server_total = st.decode_s + st.queue_s + st.server_compute_s
        transfer = max(0.0, (t3 - t2) - server_total)
        record: dict[str, Any] = {
            "embedding": embedding[0],
            "n_tokens": int(mask.sum()),
            "seq_len": int(mask.shape[1]),
            "payload_bytes": payload,
            "config_version": int(response.config_version),
            "split": state.split,
            "rho": state.rho_device,
            "rho_server": float(response.rho_server_applied),
            "method": state.method,
            "encoding": state.encoding,
            "timings": {
                "device_compute_s": timing.compute_s,
                "encode_s": t2 - t1,
                "upload_pacing_s": t_paced - t2,
                "transfer_s": transfer,
                "server_compute_s": st.server_compute_s,
                "server_other_s": st.decode_s + st.queue_s,
                "e2e_s": t4 - t0,
                "response_decode_s": t4 - t3,
                "device_stretch_s": timing.stretch_s,
                "server_stretch_s": st.server_stretch_s,
            },
        }
        energy: dict[str, Any] = {}
        if timing.energy is not None:
            energy["device_j"] = timing.energy.joules
            energy["device_source"] = timing.energy.source
        if state.power_w > 0:
            up = upload_energy(state.power_w, t_paced - t2 if self.paced else transfer)
            energy["upload_j"] = up.joules
            energy["upload_source"] = up.source
        if response.server_energy_source:
            energy["server_j"] = response.server_energy_j
            energy["server_source"] = response.server_energy_source
        if energy:
            record["energy"] = energy
        m = self.metrics
        m.observe_stages({k: v for k, v in record["timings"].items() if not k.endswith("stretch_s")})
        for stage in ("device", "upload"):
            if f"{stage}_j" in energy:
                m.observe_energy(stage, energy[f"{stage}_j"], energy[f"{stage}_source"])
        m.config_version.labels("device").set(state.version)
        if state.predicted is not None:
            p = state.predicted
            record["predicted"] = {
                "t_device_s": p.t_device_s, "t_upload_s": p.t_upload_s, "t_server_s": p.t_server_s,
                "latency_s": p.latency_s, "e_device_j": p.e_device_j, "e_upload_j": p.e_upload_j,
                "e_server_j": p.e_server_j, "energy_j": p.energy_j,
                "source": "modelled:paper eqs. 4-11 with the plan's knobs",
            }
            record["prediction_error"] = (record["timings"]["e2e_s"] - p.latency_s) / p.latency_s \
                if p.latency_s > 0 else None
            if record["prediction_error"] is not None:
                m.prediction_error.labels("device").set(record["prediction_error"])
        return record

    async def run(self, texts: list[str], on_record: Callable[[dict[str, Any]], Any] | None = None,
                  skip: Collection[str] = ()) -> list[dict]:
        """Every input `repeat` times; keys `rep-index` in `skip` (already written, --resume) are left out."""
        prepared = self.prepare(texts)
        for i in range(min(self.settings.warmup, len(prepared))):
            await self.infer_one(prepared[i], f"warmup-{i}-{uuid.uuid4().hex[:8]}")
        records: list[dict[str, Any]] = []
        for rep in range(self.settings.repeat):
            for i, (text, inputs) in enumerate(zip(texts, prepared, strict=True)):
                if f"{rep}-{i}" in skip:
                    continue
                seq = rep * len(texts) + i + 1
                rid = f"{rep}-{i}-{uuid.uuid4().hex[:8]}"
                rec = await redo_on_new_plan(functools.partial(self.infer_one, inputs, rid, seq),
                                             lambda: self.state.version, self.settings.reconnect_max_outage_s)
                rec = {"id": i if self.settings.repeat == 1 else f"{rep}-{i}", "text": text, "rep": rep, "index": i,
                       "run_id": self.run_id, "seq": seq, **rec}
                records.append(rec)
                if on_record is not None:
                    result = on_record(rec)
                    if asyncio.iscoroutine(result):
                        await result
        return records

    async def close(self) -> None:
        await self.client.close()
        self.executor.shutdown(wait=False)
        self.link.close()
        self.stage.close()

