"""Admission control of the edge server: bounded streams, bounded pending work, fair turns.

- Streams: at most `max_streams_per_peer` per peer (one client connection) and
  `max_streams` in total. A stream past a bound is refused once its first request
  is read (refused sooner, a grpc.aio client can see INTERNAL instead, grpc/grpc#36066).
- Pending requests (received, not yet answered): at most `max_pending` and
  `max_pending_bytes` (declared tensor bytes). A request past a bound is refused
  at once. Both refusals are RESOURCE_EXHAUSTED with a `retry-after-ms` hint.
- Compute turns go round-robin across peers (`FairGate`), so a client with many
  streams gets one turn per round like a client with one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from splitbed.errors import ResourceExhausted
from splitbed.resilience import overloaded
from splitbed.v1 import inference_pb2, tensor_pb2

logger = logging.getLogger(__name__)

_ITEMSIZE = {tensor_pb2.DTYPE_FLOAT32: 4, tensor_pb2.DTYPE_FLOAT16: 2, tensor_pb2.DTYPE_INT8: 1,
             tensor_pb2.DTYPE_UINT8: 1, tensor_pb2.DTYPE_INT64: 8}


def declared_bytes(request: inference_pb2.InferRequest, cap: int) -> int:
    """Tensor bytes the request's shapes declare (no copy of the payload), capped at `cap` each.

    A request whose bytes disagree with its shape is rejected by validation; until
    then the declared size is what it is charged.
    """
    total = 0
    for t in (request.hidden, request.attention_mask):
        dims = [max(0, int(d)) for d in t.shape[:8]]
        n = int(np.prod(dims, dtype=np.float64)) * _ITEMSIZE.get(t.dtype, 1) if dims else 0
        total += min(n, cap)
    return total


@dataclass(frozen=True)
class Bounds:
    max_streams: int = 16
    max_streams_per_peer: int = 4
    max_pending: int = 16
    max_pending_bytes: int = 256 * 1024 * 1024
    retry_after_s: float = 0.5


class Admission:
    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.streams: dict[str, int] = {}
        self.pending = 0
        self.pending_bytes = 0
        self.refused = 0

    @property
    def total_streams(self) -> int:
        return sum(self.streams.values())

    def _refuse(self, message: str) -> ResourceExhausted:
        self.refused += 1
        logger.info("admission: %s", message)
        return overloaded(message, self.bounds.retry_after_s)

    @contextlib.contextmanager
    def stream(self, peer: str) -> Iterator[None]:
        b = self.bounds
        if self.total_streams >= b.max_streams:
            raise self._refuse(f"server has {b.max_streams} open streams, its limit; retry later")
        if self.streams.get(peer, 0) >= b.max_streams_per_peer:
            raise self._refuse(f"peer {peer} has {b.max_streams_per_peer} open streams, the per-peer limit")
        self.streams[peer] = self.streams.get(peer, 0) + 1
        try:
            yield
        finally:
            self.streams[peer] -= 1
            if not self.streams[peer]:
                del self.streams[peer]

    @contextlib.contextmanager
    def request(self, nbytes: int) -> Iterator[None]:
        b = self.bounds
        if self.pending >= b.max_pending:
            raise self._refuse(f"{b.max_pending} requests pending, the server's limit; retry later")
        if self.pending and self.pending_bytes + nbytes > b.max_pending_bytes:
            raise self._refuse(f"{self.pending_bytes + nbytes} bytes would be pending, over the limit of "
                               f"{b.max_pending_bytes}; retry later")
        self.pending += 1
        self.pending_bytes += nbytes
        try:
            yield
        finally:
            self.pending -= 1
            self.pending_bytes -= nbytes


class FairGate:
    """`slots` compute turns, handed out round-robin across peers (FIFO within a peer)."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    async def acquire(self, peer: str) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(peer, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as it was cancelled: pass the turn on
            else:
                queue = self._waiting.get(peer)
                if queue is not None and future in queue:
                    queue.remove(future)
                    if not queue:
                        del self._waiting[peer]
            raise

    def release(self) -> None:
        while self._waiting:
            peer, queue = next(iter(self._waiting.items()))
            future = queue.popleft()
            if queue:
                self._waiting.move_to_end(peer)  # this peer's next turn comes after every other peer's
            else:
                del self._waiting[peer]
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
