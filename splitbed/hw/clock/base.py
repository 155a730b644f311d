"""The clock-cap interface every clock backend implements.

A backend caps one clock (a CPU policy, a GPU, or an emulated device) and
always reports the value it actually applied: hardware only offers discrete
steps, so the requested cap is snapped and the snapped (read-back) value is
what timing and energy models must use.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from splitbed.errors import InvalidArgument

SnapMode = Literal["down", "nearest", "up"]


@dataclass(frozen=True)
class AppliedClock:
    """What a ``set_cap``/``reset`` call did.

    requested_hz: the cap asked for, Hz.
    applied_hz: the cap in force afterwards (snapped, read back where the
        hardware allows), Hz.
    backend: the backend's name (``cpufreq``, ``nvml``, ``jetson``, ``emulated``).
    emulated: True when no hardware clock changed (compute is stretched instead).
    detail: free text (files written, per-CPU values, profile name).
    """

    requested_hz: float
    applied_hz: float
    backend: str
    emulated: bool
    detail: str = ""


class ClockBackend(ABC):
    """A frequency cap on one compute unit."""

    name: str = "abstract"
    emulated: bool = False

    @abstractmethod
    def max_hz(self) -> float:
        """Highest cap the backend can apply, Hz."""

    @abstractmethod
    def min_hz(self) -> float:
        """Lowest cap the backend can apply, Hz."""

    @abstractmethod
    def steps_hz(self) -> list[float] | None:
        """The discrete caps available (ascending, Hz), or None when any value in range works."""

    @abstractmethod
    def current_hz(self) -> float:
        """The cap (or, where only that is readable, the clock) in force now, Hz."""

    @abstractmethod
    def set_cap(self, hz: float) -> AppliedClock:
        """Cap the clock at ``hz`` (snapped to what the hardware offers)."""

    @abstractmethod
    def reset(self) -> AppliedClock:
        """Remove the cap (back to the maximum / the driver default)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release handles; the cap stays as it is."""


def check_hz(hz: float) -> float:
    """Reject caps that are not positive finite numbers."""
    value = float(hz)
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgument(f"clock cap must be a positive finite frequency in Hz, got {hz!r}")
    return value


SNAP_TOLERANCE = 1e-6  # relative: closer than this to a step counts as on it


def snap_hz(
    hz: float,
    lo: float,
    hi: float,
    steps: list[float] | None = None,
    mode: SnapMode = "down",
) -> float:
    """Snap ``hz`` into ``[lo, hi]`` and onto ``steps`` if given.

    ``down`` (the default) picks the highest step not above the request: a cap
    must never let the clock run faster than asked, so a power or energy
    budget computed at ``hz`` still holds. Requests below the lowest step get
    the lowest step (the hardware cannot go slower), above the highest the
    highest.
    """
    value = min(max(check_hz(hz), lo), hi)
    if not steps:
        return value
    ordered = sorted(steps)
    # A plan's clock a rounding error off a step (1499999999.9 for 1.5 GHz) is that step, not the one below.
    near = min(ordered, key=lambda f: abs(f - value))
    if abs(near - value) <= SNAP_TOLERANCE * near:
        return near
    if value <= ordered[0]:
        return ordered[0]
    if value >= ordered[-1]:
        return ordered[-1]
    i = bisect.bisect_right(ordered, value)
    below, above = ordered[i - 1], ordered[min(i, len(ordered) - 1)]
    if below == value or mode == "down":
        return below
    if mode == "up":
        return above
    return below if value - below <= above - value else above
