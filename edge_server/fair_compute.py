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
from edge_server.compute import ComputeResult, run_server_part
from splitbed.stage import Stage


def row_chunks(batch: int, seq: int, chunk_tokens: int) -> list[tuple[int, int]]:
    """[start, stop) row ranges of at most `chunk_tokens` tokens each (at least one row)."""
    rows = max(1, chunk_tokens // max(1, seq))
    return [(a, min(batch, a + rows)) for a in range(0, batch, rows)]


class FairCompute:
    def __init__(self, executor: Executor, slots: int, *, chunk_tokens: int = 256) -> None:
        self._executor = executor
        self.gate = FairGate(slots)
        self.chunk_tokens = chunk_tokens

    async def _turn(self, peer: str, fn: Any, *args: Any) -> ComputeResult:
        await self.gate.acquire(peer)
        try:
            result: ComputeResult = await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
            return result
        finally:
            self.gate.release()

    async def run(self, peer: str, part: Any, hidden: np.ndarray, mask: np.ndarray, queued_at: float,
                  stage: Stage, flops: float) -> ComputeResult:
        batch, seq = hidden.shape[0], hidden.shape[1]
        chunks = row_chunks(batch, seq, self.chunk_tokens)
        if len(chunks) == 1:
            return await self._turn(peer, run_server_part, part, hidden, mask, queued_at, stage, flops)
        results = []
        for a, b in chunks:
            results.append(await self._turn(peer, run_server_part, part, hidden[a:b], mask[a:b], time.perf_counter(),
                                            stage, flops * (b - a) / batch))
        compute = sum(r.compute_s for r in results)
        energy = results[0].energy
        if energy is not None:
            energy = dataclasses.replace(energy, joules=sum(r.energy.joules for r in results if r.energy),
                                         seconds=sum(r.energy.seconds for r in results if r.energy))
        return ComputeResult(
            embedding=np.concatenate([r.embedding for r in results]),
            queue_s=max(0.0, time.perf_counter() - queued_at - compute),
            compute_s=compute,
            stretch_s=sum(r.stretch_s for r in results),
            energy=energy,
        )
