"""Model work of the edge server; runs on worker threads, never on the event loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from splitbed.hw.energy import EnergyReading
from splitbed.stage import Stage


@dataclass(frozen=True)
class ComputeResult:
    embedding: np.ndarray
    queue_s: float
    compute_s: float
    stretch_s: float
    energy: EnergyReading | None


def run_server_part(
    part: Any, hidden: np.ndarray, mask: np.ndarray, queued_at: float, stage: Stage, flops: float
) -> ComputeResult:
    started = stage.begin()
    device = next((p.device for p in part.parameters()), torch.device("cpu"))
    with torch.inference_mode():
        h = torch.tensor(hidden, device=device)  # copies: the decoded array may be a read-only view
        m = torch.from_numpy(np.ascontiguousarray(mask)).to(device)
        out = part(h, m)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        emb = out.detach().to("cpu", torch.float32).numpy()
    timing = stage.finish(started, flops)
    return ComputeResult(emb, started[0] - queued_at, timing.compute_s, timing.stretch_s, timing.energy)
