"""The agent's work loop: tokenize, run the front layers, encode, stream, collect timed records."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from device_agent.client import InferenceClient
from device_agent.settings import AgentSettings
from splitbed.codec import Limits, decode, encode_float, encode_raw
from splitbed.errors import FailedPrecondition
from splitbed.model import load_device_part, load_tokenizer, resolve_model, tokenize
from splitbed.v1 import inference_pb2

logger = logging.getLogger(__name__)

# Where each timing comes from; written into every record.
TIMING_SOURCES = {
    "device_compute_s": "measured:perf_counter (device process)",
    "encode_s": "measured:perf_counter (device process)",
    "transfer_s": "derived: e2e - device_compute - encode - server_total - response_decode",
    "server_compute_s": "measured:perf_counter (edge process)",
    "server_other_s": "measured:perf_counter (edge process: decode + queue)",
    "e2e_s": "measured:perf_counter (device process, input ready -> embedding decoded)",
}


@dataclass
class Identity:
    """What the next request claims; replaced atomically when a new config is applied."""

    model: str
    split: int
    rho_device: float
    rho_server: float
    method: str
    encoding: str
    version: int = 0

    def message(self) -> inference_pb2.SplitIdentity:
        return inference_pb2.SplitIdentity(
            model=self.model,
            split=self.split,
            rho_device=self.rho_device,
            rho_server=self.rho_server,
            method=self.method,
            config_version=self.version,
        )


class DeviceRunner:
    """Owns the device part and the stream to the edge server."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.source = resolve_model(settings.model)
        self.tokenizer = load_tokenizer(self.source)
        self.part = load_device_part(
            self.source, settings.split, rho=settings.rho, method=settings.method,
            device=settings.device, seed=settings.seed,
        )
        self.part.eval()
        self.identity = Identity(
            model=settings.model, split=settings.split, rho_device=settings.rho,
            rho_server=settings.rho_server or 0.0, method=settings.method, encoding=settings.encoding,
        )
        self.client = InferenceClient(
            settings.server, max_message_bytes=settings.max_message_bytes, timeout_s=settings.timeout_s
        )
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="device-compute")
        self._limits = Limits(max_bytes=settings.max_message_bytes)
        # Set by the controller link (clock caps): returns extra seconds for a measured compute time.
        self.pad: Callable[[float], float] | None = None
        # Applied before each request (e.g. link pacing); returns seconds spent.
        self.before_send: Callable[[int], Any] | None = None

    async def connect(self) -> inference_pb2.ServerInfo:
        info = await self.client.wait_ready()
        if info.model and info.model != self.settings.model:
            raise FailedPrecondition(f"edge server serves model {info.model!r}, agent runs {self.settings.model!r}")
        current = max(info.parts, key=lambda p: p.identity.config_version, default=None)
        if current is not None and self.identity.version == 0:
            if current.identity.split != self.identity.split:
                raise FailedPrecondition(
                    f"edge server serves split {current.identity.split}, agent was started with --split "
                    f"{self.identity.split}; start both with the same split (or use a controller)"
                )
            if not self.settings.rho_server:
                self.identity.rho_server = current.identity.rho_server
            self.identity.version = current.identity.config_version
        return info

    def _front(self, inputs: dict[str, torch.Tensor]) -> tuple[np.ndarray, float, float]:
        device = next(self.part.parameters()).device
        token_types = inputs.get("token_type_ids")
        start = time.perf_counter()
        with torch.inference_mode():
            hidden = self.part(
                inputs["input_ids"].to(device),
                inputs["attention_mask"].to(device),
                token_types.to(device) if token_types is not None else None,
            )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            out = hidden.detach().to("cpu", torch.float32).numpy()
        measured = time.perf_counter() - start
        stretch = 0.0
        if self.pad is not None:
            stretch = max(0.0, self.pad(measured))
            if stretch > 0:
                time.sleep(stretch)
        return out, measured + stretch, stretch

    def prepare(self, texts: list[str]) -> list[dict[str, torch.Tensor]]:
        return [
            tokenize(self.tokenizer, [t], self.source.max_seq_len, pad_to=self.settings.seq_len) for t in texts
        ]

    async def infer_one(self, inputs: dict[str, torch.Tensor], request_id: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        ident = self.identity
        t0 = time.perf_counter()
        hidden, compute_s, stretch_s = await loop.run_in_executor(self.executor, self._front, inputs)
        t1 = time.perf_counter()
        mask = inputs["attention_mask"].numpy().astype(np.uint8)
        request = inference_pb2.InferRequest(
            request_id=request_id,
            identity=ident.message(),
            hidden=encode_float(hidden, ident.encoding),
            attention_mask=encode_raw(mask),
        )
        t2 = time.perf_counter()
        payload = request.hidden.ByteSize()
        if self.before_send is not None:
            await self.before_send(payload)
        request.timings.CopyFrom(
            inference_pb2.DeviceTimings(
                device_compute_s=compute_s, encode_s=t2 - t1, sent_unix_ns=time.time_ns(), device_stretch_s=stretch_s
            )
        )
        response = await self.client.infer(request)
        t3 = time.perf_counter()
        embedding = decode(response.embedding, what="embedding", limits=self._limits)
        t4 = time.perf_counter()
        st = response.timings
        server_total = st.decode_s + st.queue_s + st.server_compute_s
        e2e = t4 - t0
        return {
            "embedding": embedding[0],
            "n_tokens": int(mask.sum()),
            "payload_bytes": payload,
            "config_version": int(response.config_version),
            "split": ident.split,
            "rho": ident.rho_device,
            "rho_server": float(response.rho_server_applied),
            "method": ident.method,
            "encoding": ident.encoding,
            "timings": {
                "device_compute_s": compute_s,
                "encode_s": t2 - t1,
                "transfer_s": max(0.0, (t3 - t2) - server_total),
                "server_compute_s": st.server_compute_s,
                "server_other_s": st.decode_s + st.queue_s,
                "e2e_s": e2e,
                "response_decode_s": t4 - t3,
                "device_stretch_s": stretch_s,
                "server_stretch_s": st.server_stretch_s,
            },
        }

    async def run(self, texts: list[str], on_record: Callable[[dict[str, Any]], None] | None = None) -> list[dict]:
        prepared = self.prepare(texts)
        for i in range(min(self.settings.warmup, len(prepared))):
            await self.infer_one(prepared[i], f"warmup-{i}-{uuid.uuid4().hex[:8]}")
        records: list[dict[str, Any]] = []
        for rep in range(self.settings.repeat):
            for i, (text, inputs) in enumerate(zip(texts, prepared, strict=True)):
                rec = await self.infer_one(inputs, f"{rep}-{i}-{uuid.uuid4().hex[:8]}")
                rec = {"id": i if self.settings.repeat == 1 else f"{rep}-{i}", "text": text, **rec}
                records.append(rec)
                if on_record is not None:
                    on_record(rec)
        return records

    async def close(self) -> None:
        await self.client.close()
        self.executor.shutdown(wait=False)
