"""The uplink interface: apply a transmit power, get the rate it buys.

``apply`` maps power to rate with the paper's r(p) = B log2(1 + g p/(B N0))
(``splitbed.channel.rate_bps``) and enforces or emulates that rate; ``pace``
is what the device agent awaits before sending each chunk (a no-op where the
kernel or the radio does the limiting).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

from splitbed.channel import rate_bps
from splitbed.errors import InvalidArgument


@dataclass(frozen=True)
class AppliedLink:
    """What ``apply`` did.

    power_w: transmit power in force, W (read back from the radio for ``iw``).
    rate_bps: uplink rate in force, bit/s.
    backend: ``pacer``, ``tbf`` or ``iw``.
    emulated: True when no radio power changed (the rate stands in for it).
    detail: free text (tc line, iw read-back).
    rate_source: how ``rate_bps`` came about: ``emulated:pacer`` (application
        token bucket), ``enforced:tc-tbf`` (kernel shaper), ``modelled:r(p)``
        (an estimate; the radio picks the real rate).
    """

    power_w: float
    rate_bps: float
    backend: str
    emulated: bool
    detail: str = ""
    rate_source: str = ""


def model_rate_bps(power_w: float, *, bandwidth_hz: float, noise_psd: float, gain: float) -> float:
    """r(p) after checking the power is a positive finite number of watts."""
    if not math.isfinite(power_w) or power_w <= 0:
        raise InvalidArgument(f"transmit power must be positive finite watts, got {power_w!r}")
    return rate_bps(power_w, bandwidth_hz, noise_psd, gain)


def check_rate(rate: float) -> float:
    value = float(rate)
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgument(f"rate must be positive finite bit/s, got {rate!r}")
    return value


class LinkBackend(ABC):
    """An uplink whose rate follows the transmit power."""

    name: str = "abstract"
    emulated: bool = True

    @abstractmethod
    def apply(self, power_w: float, *, bandwidth_hz: float, noise_psd: float, gain: float) -> AppliedLink:
        """Set transmit power ``power_w`` (W) on a channel (B Hz, N0 W/Hz, gain g)."""

    async def pace(self, nbytes: int) -> None:  # noqa: B027 - default: the link itself limits
        """Wait until ``nbytes`` more may be sent at the applied rate."""

    def pace_sync(self, nbytes: int) -> None:  # noqa: B027 - default: the link itself limits
        """Blocking ``pace`` for threads without an event loop."""

    def close(self) -> None:  # noqa: B027 - default: nothing to undo
        """Undo what ``apply`` installed (qdisc, radio power)."""
