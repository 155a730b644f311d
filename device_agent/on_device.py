"""A request that ends on the device: at split L = n the agent pools the last hidden state itself.

Nothing is uploaded and the edge server is not called: the device runs every
layer, then the model's pooling (the same `splitbed.model.pool` the server
part ends with), so the plan's upload stage really is empty (p = 0, t = 0).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from device_agent.record import Energy, Predicted, RequestRecord, Timings
from splitbed.model import ModelSource
from splitbed.model.layers import pool
from splitbed.side.hardware import ComputeTiming

if TYPE_CHECKING:
    from device_agent.runner import PartState

NOTHING_UPLOADED = "nothing uploaded"


def runs_on_device(state: PartState, source: ModelSource) -> bool:
    """True when the device runs every layer (L = n): the request needs no server."""
    return state.split >= source.n_layers


def pooled(source: ModelSource, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The sentence embedding [B, H] of a final hidden state [B, S, H], pooled as the server part pools."""
    with torch.inference_mode():
        out = pool(torch.from_numpy(hidden), torch.from_numpy(mask.astype(np.int64)), source.pooling,
                   source.normalize)
    return out.numpy()


def finish_on_device(state: PartState, source: ModelSource, hidden: np.ndarray, mask: np.ndarray,
                     timing: ComputeTiming, started: float) -> RequestRecord:
    """The record of a request whose front layers were the whole model: pooled here, nothing sent."""
    embedding = pooled(source, hidden, mask)
    done = time.perf_counter()
    timings = Timings(
        device_compute_s=timing.compute_s, encode_s=0.0, upload_pacing_s=0.0, transfer_s=0.0, server_compute_s=0.0,
        server_other_s=0.0, e2e_s=done - started, response_decode_s=0.0, device_stretch_s=timing.stretch_s,
        server_stretch_s=0.0,
    )
    meter = timing.energy
    energy = Energy(device_j=meter.joules if meter else None, device_source=meter.source if meter else None,
                    upload_j=0.0, upload_source=NOTHING_UPLOADED)
    predicted = Predicted.of(state.predicted) if state.predicted is not None else None
    return RequestRecord(
        embedding=embedding[0], n_tokens=int(mask.sum()), seq_len=int(mask.shape[1]), payload_bytes=0,
        config_version=state.version, split=state.split, rho=state.rho_device, rho_server=state.rho_server,
        method=state.method, encoding=state.encoding, timings=timings, energy=energy, predicted=predicted,
        prediction_error=(timings.e2e_s - predicted.latency_s) / predicted.latency_s
        if predicted is not None and predicted.latency_s > 0 else None,
    )
