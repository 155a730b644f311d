"""T_fix: the per-request cost that none of the model's three stages covers, measured by the device.

The system model times a request as device compute + upload + server compute
(paper eqs. 4, 6, 8). A real request also pays for encoding the hidden state,
the gRPC round trip, the server's decode and thread hops, and decoding the
answer: 2.5-4 ms on a loopback host, which at 32 tokens is 5-15 % of the
latency. The controller adds it to every prediction as a constant T_fix
(docs/design.md section 1). It is not scaled with the clocks: it is framework
work on the host, not the part's FLOPs.

Measured two ways, the better one reported:

* over the agent's own requests (`observe`): the median, over the last
  `window` requests that went to the server, of
  e2e - (device compute + upload pacing + server compute);
* before the first request (`probe_s`): a round trip to the edge server
  (GetInfo) plus encoding and decoding a hidden state of the length the device
  sends and its answer, plus one hop to a worker thread. It leaves out the
  server's own dispatch, so it is a lower bound until requests refine it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from device_agent.record import RequestRecord
from splitbed.codec import Limits, decode, encode_float
from splitbed.kinds import Encoding

FROM_REQUESTS = "measured: median over the agent's last requests of e2e - (device compute + upload + server compute)"
FROM_PROBE = ("measured: probe before any request (gRPC round trip + encode/decode of the payload and the answer "
              "+ one thread hop)")


def unmodelled_s(record: RequestRecord) -> float | None:
    """e2e minus the three modelled stages, for a request that went to the server; None for one that did not."""
    if record.payload_bytes <= 0:
        return None
    t = record.timings
    return max(0.0, t.e2e_s - t.device_compute_s - t.upload_pacing_s - t.server_compute_s)


class FixedCost:
    """The running T_fix estimate of one agent."""

    def __init__(self, window: int = 32, min_requests: int = 5) -> None:
        self._recent: deque[float] = deque(maxlen=window)
        self._min = min_requests
        self.probed_s: float | None = None
        self.reported_from_requests = False  # the first request-based value goes out at once, not in N requests

    def observe(self, record: RequestRecord) -> None:
        value = unmodelled_s(record)
        if value is not None:
            self._recent.append(value)

    def estimate(self) -> tuple[float, str] | None:
        """(seconds, source): from requests once there are enough of them, else the probe, else None."""
        if len(self._recent) >= self._min:
            return statistics.median(self._recent), FROM_REQUESTS
        if self.probed_s is not None:
            return self.probed_s, FROM_PROBE
        return None


async def probe_s(ping: Callable[[], Awaitable[Any]], hidden_size: int, seq_len: int, encoding: Encoding,
                  rounds: int = 7) -> float:
    """Median over `rounds` of one round trip to the server and the codec work of one request (see module)."""
    hidden = np.random.default_rng(0).standard_normal((1, seq_len, hidden_size)).astype(np.float32)
    answer = hidden[:, 0, :]
    limits = Limits(max_bytes=64 * hidden.nbytes + (1 << 20))
    loop = asyncio.get_running_loop()

    def codec() -> None:
        decode(encode_float(hidden, encoding), what="probe", limits=limits)
        decode(encode_float(answer, "fp32"), what="probe", limits=limits)

    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await ping()
        await loop.run_in_executor(None, codec)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)
