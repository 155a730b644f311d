"""Outliving edge restarts: resend an unanswered request until the server is back, with backoff and jitter.

A request carries `(run_id, seq)`; resending it is safe because the server
answers an id it has already answered from its window of recent answers
(`edge_server.replay`), and the agent writes a record only for an answer.
Retried: the stream breaking (UNAVAILABLE, CANCELLED, a deadline, the server
ending the stream while draining) and RESOURCE_EXHAUSTED (after the server's
retry hint); FAILED_PRECONDITION too while an outage lasts (a restarted
server that has not yet received the plan). Anything else is the request's
own fault and is raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from splitbed.errors import FailedPrecondition, ResourceExhausted, Unavailable
from splitbed.v1 import inference_pb2

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Inferer(Protocol):
    async def infer(self, request: inference_pb2.InferRequest) -> inference_pb2.InferResponse: ...


@dataclass(frozen=True)
class RetryPolicy:
    """max_outage_s: give up after this long without an answer, s; backoff_s / backoff_max_s: first and
    largest wait between attempts, s (doubling, full jitter)."""

    max_outage_s: float = 60.0
    backoff_s: float = 0.1
    backoff_max_s: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        cap = min(self.backoff_max_s, self.backoff_s * 2 ** min(attempt, 30))
        return rng.uniform(cap / 2, cap)


class ResilientClient:
    """Wraps a client's `infer`: the same request is resent until answered or the outage budget is spent."""

    def __init__(self, client: Inferer, policy: RetryPolicy, *, rng: random.Random | None = None,
                 plan_version: Callable[[], int] | None = None) -> None:
        self._client = client
        self._plan_version = plan_version
        self.policy = policy
        self._rng = rng or random.Random()
        self.retries = 0
        self.outages = 0

    def _stale(self, request: inference_pb2.InferRequest) -> bool:
        """The agent applied a newer plan than the request was made with: resending it cannot help."""
        return self._plan_version is not None and self._plan_version() != request.identity.config_version

    async def infer(self, request: inference_pb2.InferRequest) -> inference_pb2.InferResponse:
        started: float | None = None
        attempt = 0
        while True:
            try:
                response = await self._client.infer(request)
            except (Unavailable, ResourceExhausted, FailedPrecondition) as exc:
                # A restarted server serves no plan version until the controller re-pushes it: during an
                # outage that started with a broken stream, "version not served" is part of the outage.
                if isinstance(exc, FailedPrecondition) and (started is None or self._stale(request)):
                    raise
                now = time.monotonic()
                if started is None:
                    started = now
                    self.outages += 1
                left = self.policy.max_outage_s - (now - started)
                if left <= 0:
                    raise Unavailable(f"request {request.request_id}: no answer for {now - started:.1f} s "
                                      f"(limit {self.policy.max_outage_s:g} s); last error: {exc}") from exc
                wait = self.policy.delay(attempt, self._rng)
                hint = exc.retry_after_s
                if hint:
                    wait = max(wait, float(hint))
                wait = min(wait, left)
                logger.warning("request %s (seq %d): %s; resending in %.2f s", request.request_id, request.seq,
                               exc, wait)
                self.retries += 1
                attempt += 1
                await asyncio.sleep(wait)
                continue
            if started is not None:
                logger.info("edge server back after %.2f s (%d attempts)", time.monotonic() - started, attempt)
            return response


async def redo_on_new_plan(attempt: Callable[[], Awaitable[T]], plan_version: Callable[[], int],
                           max_wait_s: float) -> T:
    """Run `attempt`; when the server no longer serves its plan version, wait for the newer plan and redo it.

    Under a controller the server drops a plan version once two newer ones are
    installed; an agent still applying the newest (loading its part) may send a
    request for the dropped one. Standalone (version 0) the error is final.
    """
    while True:
        version = plan_version()
        try:
            return await attempt()
        except FailedPrecondition as exc:
            if version == 0 or "is not served" not in str(exc):
                raise
            deadline = time.monotonic() + max_wait_s
            while plan_version() == version:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
            logger.warning("plan version %d no longer served; redoing the request with version %d", version,
                           plan_version())
