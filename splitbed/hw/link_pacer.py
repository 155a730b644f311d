"""Application-level pacing of the uplink stream at r(p) (the embedded default).

A token bucket: each ``pace(nbytes)`` takes ``nbytes`` tokens, refilled at
the applied rate; a call that overdraws sleeps until its debt is repaid, so
the long-run throughput of paced sends equals the rate. Concurrent callers
queue behind each other's reservations and share the rate.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from splitbed.errors import FailedPrecondition, InvalidArgument
from splitbed.hw.link_base import AppliedLink, LinkBackend, check_rate, model_rate_bps

logger = logging.getLogger(__name__)


class PacerLink(LinkBackend):
    """Token-bucket pacing at r(p); ``emulated=True`` (no radio changes)."""

    name = "pacer"
    emulated = True

    def __init__(self, *, burst_bytes: int = 16 * 1024, clock: Callable[[], float] = time.monotonic) -> None:
        if burst_bytes <= 0:
            raise InvalidArgument(f"burst_bytes must be positive, got {burst_bytes!r}")
        self._burst = float(burst_bytes)
        self._clock = clock
        self._lock = threading.Lock()
        self._rate_Bps: float | None = None
        self._power_w = 0.0
        self._tokens = self._burst
        self._last = clock()

    @property
    def rate_bps(self) -> float | None:
        return None if self._rate_Bps is None else self._rate_Bps * 8

    def apply(self, power_w: float, *, bandwidth_hz: float, noise_psd: float, gain: float) -> AppliedLink:
        rate = model_rate_bps(power_w, bandwidth_hz=bandwidth_hz, noise_psd=noise_psd, gain=gain)
        return self._set(power_w, rate)

    def set_rate_bps(self, rate_bps: float) -> AppliedLink:
        """Pace at ``rate_bps`` directly (no power model); power is reported as 0."""
        return self._set(0.0, check_rate(rate_bps))

    def _set(self, power_w: float, rate: float) -> AppliedLink:
        with self._lock:
            self._refill()
            self._rate_Bps = rate / 8.0
            self._power_w = power_w
        logger.info("pacer: %.4f W -> %.3f Mbit/s", power_w, rate / 1e6)
        return AppliedLink(power_w, rate, self.name, True, f"token bucket, burst {self._burst:.0f} B",
                           "emulated:pacer")

    def _refill(self) -> None:
        now = self._clock()
        if self._rate_Bps is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate_Bps)
        self._last = now

    def reserve(self, nbytes: int) -> float:
        """Take ``nbytes`` tokens now; return the seconds the caller must wait before sending."""
        if nbytes < 0:
            raise InvalidArgument(f"nbytes must be non-negative, got {nbytes!r}")
        with self._lock:
            if self._rate_Bps is None:
                raise FailedPrecondition("pacer has no rate yet: call apply() (or set_rate_bps) first")
            self._refill()
            self._tokens -= nbytes
            return 0.0 if self._tokens >= 0 else -self._tokens / self._rate_Bps

    async def pace(self, nbytes: int) -> None:
        wait = self.reserve(nbytes)
        if wait > 0:
            await asyncio.sleep(wait)

    def pace_sync(self, nbytes: int) -> None:
        wait = self.reserve(nbytes)
        if wait > 0:
            time.sleep(wait)
