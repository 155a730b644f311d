"""Model work of the edge server: loading parts and running them, on worker threads, never on the event loop."""

from __future__ import annotations

import numpy as np
import torch

from edge_server.registry import Served
from edge_server.settings import EdgeSettings
from splitbed.model import ModelSource, ServerPart, load_server_part
from splitbed.side.hardware import ComputeHardware, ComputeTiming
from splitbed.side.timed import timed_forward


class PartLoader:
    """Loads (and prunes) the server part of a split from the model source; blocking."""

    def __init__(self, settings: EdgeSettings, source: ModelSource) -> None:
        self.settings = settings
        self.source = source

    def part(self, split: int, rho: float, method: str) -> ServerPart:
        s = self.settings
        part = load_server_part(self.source, split, rho=rho, method=method, device=s.device, seed=s.seed)
        part.eval()
        return part

    def served(self, version: int, split: int, rho: float, method: str) -> Served:
        part = self.part(split, rho, method)
        return Served(version=version, model=self.settings.model, split=split, rho=rho, method=method, part=part)


def run_server_part(hw: ComputeHardware, part: ServerPart, hidden: np.ndarray,
                    mask: np.ndarray) -> tuple[np.ndarray, ComputeTiming]:
    """The back layers on a decoded request: embedding [B, H] and the compute's timing and energy."""
    h = torch.tensor(hidden)  # copies: the decoded array may be a read-only view of the message
    m = torch.from_numpy(np.ascontiguousarray(mask))
    return timed_forward(hw, part, h, m)
