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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from device_agent.client import InferenceClient
from device_agent.record import Energy, Predicted, RequestRecord, Timings
from device_agent.resilient import ResilientClient, RetryPolicy, redo_on_new_plan
from device_agent.settings import AgentSettings
from device_agent.uplink import Uplink
from splitbed.codec import Limits, decode, encode_float, encode_raw
from splitbed.errors import FailedPrecondition
from splitbed.hw.energy import upload_energy
from splitbed.kinds import Encoding
from splitbed.metrics import Metrics
from splitbed.model import DevicePart, load_device_part, load_tokenizer, tokenize
from splitbed.resilience import Keepalive
from splitbed.side.hardware import ComputeHardware, ComputeTiming
from splitbed.side.timed import flops_of, open_model, timed_forward
from splitbed.tls import TlsFiles
from splitbed.v1 import control_pb2, inference_pb2

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartState:
    """Everything a request is made with; replaced as a whole when a config is applied."""

    part: DevicePart
    model: str
    split: int
    rho_device: float
    rho_server: float
    method: str
    encoding: Encoding
    version: int = 0
    predicted: control_pb2.Prediction | None = None
    power_w: float = 0.0

    def identity(self) -> inference_pb2.SplitIdentity:
        return inference_pb2.SplitIdentity(
            model=self.model, split=self.split, rho_device=self.rho_device, rho_server=self.rho_server,
            method=self.method, config_version=self.version,
        )

    def flops(self, seq_len: int) -> int:
        return flops_of(self.part, seq_len)


@dataclass
class _Stamps:
    """perf_counter readings along one request."""

    start: float
    computed: float = 0.0
    encoded: float = 0.0
    paced: float = 0.0
    answered: float = 0.0
    decoded: float = 0.0


class DeviceRunner:
    """Owns the device part, the compute hardware, the radio uplink and the stream to the edge server."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.source = open_model(settings, "device")
        self.tokenizer = load_tokenizer(self.source)
        part = self.load_part(settings.split, settings.rho, settings.method)
        self.state = PartState(
            part=part, model=settings.model, split=settings.split, rho_device=settings.rho,
            rho_server=settings.rho_server or 0.0, method=settings.method, encoding=settings.encoding,
        )
        self.hw = ComputeHardware.from_settings(settings)
        self.uplink = Uplink(settings)
        if settings.power_w is not None:
            self.uplink.apply_power(settings.power_w)
            self.state = dataclasses.replace(self.state, power_w=settings.power_w)
        self.client = InferenceClient(
            settings.server, max_message_bytes=settings.max_message_bytes, timeout_s=settings.timeout_s,
            keepalive=Keepalive(settings.keepalive_s, settings.keepalive_timeout_s, settings.reconnect_backoff_max_s),
            tls=TlsFiles.of(settings),
        )
        self.run_id = settings.run_id or uuid.uuid4().hex
        self.resilient = ResilientClient(self.client, RetryPolicy(
            settings.reconnect_max_outage_s, settings.reconnect_backoff_s, settings.reconnect_backoff_max_s),
            plan_version=lambda: self.state.version)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="device-compute")
        self._limits = Limits(max_bytes=settings.max_message_bytes)
        self.metrics = Metrics("device")
        if settings.metrics_port is not None:
            self.metrics.serve(settings.metrics_port, host=settings.host)

    def load_part(self, split: int, rho: float, method: str) -> DevicePart:
        part = load_device_part(self.source, split, rho=rho, method=method, device=self.settings.device,
                                seed=self.settings.seed)
        part.eval()
        return part

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

    def front(self, state: PartState, inputs: dict[str, torch.Tensor]) -> tuple[np.ndarray, ComputeTiming]:
        """The front layers of `state` on one tokenized input, timed under the compute hardware (blocking)."""
        return timed_forward(self.hw, state.part, inputs["input_ids"], inputs["attention_mask"],
                             inputs.get("token_type_ids"))

    def prepare(self, texts: list[str]) -> list[dict[str, torch.Tensor]]:
        return [
            tokenize(self.tokenizer, [t], self.source.max_seq_len, pad_to=self.settings.seq_len) for t in texts
        ]

    async def infer_one(self, inputs: dict[str, torch.Tensor], request_id: str, seq: int = 0) -> RequestRecord:
        """One request: compute, encode, pace the upload, send, decode the answer; its timed record.

        `seq` > 0 sends (run_id, seq) so a resend after a reconnect is answered once (the edge's replay window).
        """
        loop = asyncio.get_running_loop()
        state = self.state  # one snapshot: a config switch never mixes versions within a request
        t = _Stamps(time.perf_counter())
        hidden, timing = await loop.run_in_executor(self.executor, functools.partial(self.front, state, inputs))
        t.computed = time.perf_counter()
        mask = inputs["attention_mask"].numpy().astype(np.uint8)
        request = inference_pb2.InferRequest(request_id=request_id, identity=state.identity(),
                                             hidden=encode_float(hidden, state.encoding),
                                             attention_mask=encode_raw(mask), run_id=self.run_id if seq else "",
                                             seq=seq)
        t.encoded = time.perf_counter()
        response = await self._send(state, request, timing, t)
        embedding = decode(response.embedding, what="embedding", limits=self._limits)
        t.decoded = time.perf_counter()
        record = self._record(state, request, response, timing, t, embedding[0], mask)
        self._observe(state, record)
        return record

    async def _send(self, state: PartState, request: inference_pb2.InferRequest, timing: ComputeTiming,
                    t: _Stamps) -> inference_pb2.InferResponse:
        """Pace the upload at r(p) (when a power is applied), stamp the device timings, send, await the answer."""
        if state.power_w > 0:  # no transmit power applied yet (standalone without --power-w): unpaced
            await self.uplink.pace(len(request.hidden.data) + len(request.hidden.scales))
        t.paced = time.perf_counter()
        request.timings.CopyFrom(inference_pb2.DeviceTimings(
            device_compute_s=timing.compute_s, encode_s=t.encoded - t.computed, sent_unix_ns=time.time_ns(),
            device_stretch_s=timing.stretch_s,
        ))
        response = await self.resilient.infer(request)
        t.answered = time.perf_counter()
        return response

    def _record(self, state: PartState, request: inference_pb2.InferRequest, response: inference_pb2.InferResponse,
                timing: ComputeTiming, t: _Stamps, embedding: np.ndarray, mask: np.ndarray) -> RequestRecord:
        st = response.timings
        server_total = st.decode_s + st.queue_s + st.server_compute_s
        timings = Timings(
            device_compute_s=timing.compute_s, encode_s=t.encoded - t.computed, upload_pacing_s=t.paced - t.encoded,
            transfer_s=max(0.0, (t.answered - t.encoded) - server_total), server_compute_s=st.server_compute_s,
            server_other_s=st.decode_s + st.queue_s, e2e_s=t.decoded - t.start,
            response_decode_s=t.decoded - t.answered, device_stretch_s=timing.stretch_s,
            server_stretch_s=st.server_stretch_s,
        )
        predicted = Predicted.of(state.predicted) if state.predicted is not None else None
        return RequestRecord(
            embedding=embedding, n_tokens=int(mask.sum()), seq_len=int(mask.shape[1]),
            payload_bytes=len(request.hidden.data) + len(request.hidden.scales),
            config_version=int(response.config_version), split=state.split, rho=state.rho_device,
            rho_server=float(response.rho_server_applied), method=state.method, encoding=state.encoding,
            timings=timings, energy=self._energy(state, timing, timings, response), predicted=predicted,
            prediction_error=(timings.e2e_s - predicted.latency_s) / predicted.latency_s
            if predicted is not None and predicted.latency_s > 0 else None,
        )

    def _energy(self, state: PartState, timing: ComputeTiming, timings: Timings,
                response: inference_pb2.InferResponse) -> Energy | None:
        """Energy of each stage that has a meter or a model (None when none has)."""
        parts: dict[str, Any] = {}
        if timing.energy is not None:
            parts.update(device_j=timing.energy.joules, device_source=timing.energy.source)
        if state.power_w > 0:
            up = upload_energy(state.power_w, timings.upload_pacing_s if self.uplink.paced else timings.transfer_s)
            parts.update(upload_j=up.joules, upload_source=up.source)
        if response.server_energy_source:
            parts.update(server_j=response.server_energy_j, server_source=response.server_energy_source)
        return Energy(**parts) if parts else None

    def _observe(self, state: PartState, record: RequestRecord) -> None:
        m = self.metrics
        m.observe_stages(record.timings.stages())
        if record.energy is not None:
            for stage, joules, source in (("device", record.energy.device_j, record.energy.device_source),
                                          ("upload", record.energy.upload_j, record.energy.upload_source)):
                if joules is not None and source is not None:
                    m.observe_energy(stage, joules, source)
        m.config_version.labels("device").set(state.version)
        if record.prediction_error is not None:
            m.prediction_error.labels("device").set(record.prediction_error)

    async def run(self, texts: list[str], on_record: Callable[[RequestRecord], Any] | None = None,
                  skip: Collection[str] = ()) -> list[RequestRecord]:
        """Every input `repeat` times; keys `rep-index` in `skip` (already written, --resume) are left out."""
        prepared = self.prepare(texts)
        for i in range(min(self.settings.warmup, len(prepared))):
            await self.infer_one(prepared[i], f"warmup-{i}-{uuid.uuid4().hex[:8]}")
        records: list[RequestRecord] = []
        for rep in range(self.settings.repeat):
            for i, (text, inputs) in enumerate(zip(texts, prepared, strict=True)):
                if f"{rep}-{i}" in skip:
                    continue
                seq = rep * len(texts) + i + 1
                rid = f"{rep}-{i}-{uuid.uuid4().hex[:8]}"
                rec = await redo_on_new_plan(functools.partial(self.infer_one, inputs, rid, seq),
                                             lambda: self.state.version, self.settings.reconnect_max_outage_s)
                rec.id, rec.text = (i if self.settings.repeat == 1 else f"{rep}-{i}"), text
                rec.rep, rec.index, rec.run_id, rec.seq = rep, i, self.run_id, seq
                records.append(rec)
                if on_record is not None:
                    result = on_record(rec)
                    if asyncio.iscoroutine(result):
                        await result
        return records

    async def close(self) -> None:
        await self.client.close()
        self.executor.shutdown(wait=False)
        self.uplink.close()
        self.hw.close()
