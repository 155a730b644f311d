"""Compute in fair, bounded turns: a large batch runs as row chunks, each chunk one turn of the `FairGate`.

Rows of a batch are independent in the back layers (each sequence attends
only to itself), so running them in chunks gives the same embeddings while
a small request from another client waits at most one chunk, not a whole
batch. Chunks also bound the activations held at once (attention scores
grow with rows x seq^2).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from concurrent.futures import Executor
from typing import Any

import numpy as np

from edge_server.admission import FairGate
from edge_server.compute import run_server_part
from splitbed.model import ServerPart
from splitbed.side.hardware import ComputeHardware, ComputeTiming

Result = tuple[np.ndarray, ComputeTiming]


def row_chunks(batch: int, seq: int, chunk_tokens: int) -> list[tuple[int, int]]:
    """[start, stop) row ranges of at most `chunk_tokens` tokens each (at least one row)."""
    rows = max(1, chunk_tokens // max(1, seq))
    return [(a, min(batch, a + rows)) for a in range(0, batch, rows)]


def combined(results: list[Result]) -> Result:
    """One result for a batch run in chunks: `started_s` is set so that the waits between chunks count as
    queueing (end - compute), as they are for the client."""
    timings = [t for _, t in results]
    compute = sum(t.compute_s for t in timings)
    energy = timings[0].energy
    if energy is not None:
        energy = dataclasses.replace(energy, joules=sum(t.energy.joules for t in timings if t.energy),
                                     seconds=sum(t.energy.seconds for t in timings if t.energy))
    timing = ComputeTiming(compute_s=compute, stretch_s=sum(t.stretch_s for t in timings), energy=energy,
                           started_s=time.perf_counter() - compute)
    return np.concatenate([emb for emb, _ in results]), timing


class FairCompute:
    def __init__(self, executor: Executor, slots: int, *, chunk_tokens: int = 256) -> None:
        self._executor = executor
        self.gate = FairGate(slots)
        self.chunk_tokens = chunk_tokens

    async def _turn(self, peer: str, *args: Any) -> Result:
        await self.gate.acquire(peer)
        try:
            result: Result = await asyncio.get_running_loop().run_in_executor(self._executor, run_server_part, *args)
            return result
        finally:
            self.gate.release()

    async def run(self, peer: str, hw: ComputeHardware, part: ServerPart, hidden: np.ndarray,
                  mask: np.ndarray) -> Result:
        """The back layers on a batch, in fair turns: the embedding and the compute's timing and energy."""
        chunks = row_chunks(hidden.shape[0], hidden.shape[1], self.chunk_tokens)
        if len(chunks) == 1:
            return await self._turn(peer, hw, part, hidden, mask)
        return combined([await self._turn(peer, hw, part, hidden[a:b], mask[a:b]) for a, b in chunks])
