"""Model work of the edge server; runs on worker threads, never on the event loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class ComputeResult:
    embedding: np.ndarray
    queue_s: float
    compute_s: float
    stretch_s: float


# Given the measured compute seconds, an emulated clock returns how long to
# wait on top so the stage takes what the capped clock would take.
Pad = Callable[[float], float]


def run_server_part(
    part: Any, hidden: np.ndarray, mask: np.ndarray, queued_at: float, pad: Pad | None = None
) -> ComputeResult:
    start = time.perf_counter()
    device = next((p.device for p in part.parameters()), torch.device("cpu"))
    with torch.inference_mode():
        h = torch.from_numpy(np.ascontiguousarray(hidden)).to(device)
        m = torch.from_numpy(np.ascontiguousarray(mask)).to(device)
        out = part(h, m)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        emb = out.detach().to("cpu", torch.float32).numpy()
    measured = time.perf_counter() - start
    stretch = 0.0
    if pad is not None:
        stretch = max(0.0, pad(measured))
        if stretch > 0:
            time.sleep(stretch)
    return ComputeResult(emb, start - queued_at, measured + stretch, stretch)
