"""The radio uplink of the agent: transmit power on its link backend, the channel it is planned for, the rate.

`splitbed.hw.link` holds the backends (pacer, tbf, iw); this wraps the one
the agent runs with the channel from its settings (B, N0, path-loss gain) and
remembers what was applied and measured, for the profile and the telemetry.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from device_agent.settings import AgentSettings
from splitbed.channel import gain_from_distance, gain_from_rate
from splitbed.hw.link import LinkBackend, PacerLink, make_link
from splitbed.hw.link_base import AppliedLink
from splitbed.v1 import control_pb2


class Uplink:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        # burst 1 byte: every upload waits payload/r(p), as the model has it (no idle-time credit).
        opts: dict[str, Any] = {"dev": settings.link_dev} if settings.link != "pacer" else {"burst_bytes": 1}
        if settings.link == "tbf":
            opts["min_queue_bytes"] = settings.link_queue_bytes
        self.backend: LinkBackend = make_link(settings.link, **opts)
        self.applied_power_w = 0.0
        self.applied_rate_bps = 0.0
        self.measured_rate_bps = 0.0
        self._applied: tuple[float, AppliedLink] | None = None

    @property
    def paced(self) -> bool:
        """True when the upload time is the pacer's hold; otherwise the link itself (tbf, a radio) shapes it."""
        return isinstance(self.backend, PacerLink)

    def gain(self) -> float:
        s = self.settings
        return gain_from_distance(s.distance_m, s.k0_db, s.path_loss_exponent)

    def apply_power(self, power_w: float) -> AppliedLink:
        # The same power again (a re-plan that moved other knobs) leaves the link alone: what the channel did to
        # the shaped rate meanwhile (an emulated channel change) is not undone.
        if self._applied is not None and self._applied[0] == power_w:
            return self._applied[1]
        s = self.settings
        applied = self.backend.apply(power_w, bandwidth_hz=s.bandwidth_hz, noise_psd=s.noise_psd_w_per_hz,
                                     gain=self.gain())
        self.applied_power_w, self.applied_rate_bps = applied.power_w, applied.rate_bps
        self._applied = (power_w, applied)
        return applied

    def burst_bytes(self) -> float:
        """The shaper's bucket at the applied rate (tbf), 0 for the pacer, which holds every byte."""
        if self.paced or self.applied_rate_bps <= 0:
            return 0.0
        burst_for = getattr(self.backend, "burst_for", None)
        return float(burst_for(self.applied_rate_bps)) if callable(burst_for) else 0.0

    async def pace(self, nbytes: int) -> None:
        await self.backend.pace(nbytes)

    def gain_estimate(self, rate: float) -> float | None:
        """g from the measured rate, or None when the rate says nothing about the channel.

        A rate far above r(P_max) of the configured link (e.g. an unshaped
        loopback) would invert to an absurd gain; it is not reported.
        """
        s = self.settings
        if self.applied_power_w <= 0 or rate > 64 * s.bandwidth_hz:
            return None
        try:
            return gain_from_rate(rate, self.applied_power_w, s.bandwidth_hz, s.noise_psd_w_per_hz)
        except (OverflowError, ValueError):
            return None

    async def profile(self, ping: Callable[[], Awaitable[Any]]) -> control_pb2.LinkProfile:
        """The link as the controller plans with it; `ping` is one round trip to the edge server."""
        rtts = []
        for _ in range(5):
            t0 = time.perf_counter()
            await ping()
            rtts.append(time.perf_counter() - t0)
        s = self.settings
        return control_pb2.LinkProfile(
            backend=self.backend.name, bandwidth_hz=s.bandwidth_hz, noise_psd_w_per_hz=s.noise_psd_w_per_hz,
            gain=self.gain(), p_max_w=s.p_max_w, applied_power_w=self.applied_power_w,
            measured_rate_bps=self.measured_rate_bps or self.applied_rate_bps, rtt_s=statistics.median(rtts),
        )

    def close(self) -> None:
        self.backend.close()
