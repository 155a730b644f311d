"""Emulated clock cap: stretch real compute to the time the capped device would take.

The host runs the work at full speed; the caller then sleeps ``stretch(...)``
seconds so the wall time equals ``flops / (f_cap * c)`` of the named profile.
Emulation can only slow the host down, so a profile faster than the host is
refused rather than reported with wrong timings.
"""

from __future__ import annotations

import logging
import time

from splitbed.errors import FailedPrecondition, InvalidArgument
from splitbed.hw.clock.base import AppliedClock, ClockBackend, SnapMode, snap_hz
from splitbed.hw.clock.profiles import DeviceProfile, get_profile

logger = logging.getLogger(__name__)


class EmulatedClock(ClockBackend):
    """A clock cap emulated by stretching compute time (``emulated=True``)."""

    name = "emulated"
    emulated = True

    def __init__(self, profile: DeviceProfile | str, host_flops_per_s: float, *, snap: SnapMode = "down") -> None:
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        if not host_flops_per_s > 0:
            raise InvalidArgument(f"host_flops_per_s must be positive, got {host_flops_per_s!r}")
        self.host_flops_per_s = float(host_flops_per_s)
        peak = self.profile.peak_flops_per_s
        if peak > self.host_flops_per_s:
            raise FailedPrecondition(
                f"profile {self.profile.name!r} is faster than this host: {peak / 1e9:.1f} GFLOP/s at "
                f"f_max={self.profile.f_max_hz / 1e6:.0f} MHz x c={self.profile.flops_per_cycle:g} vs "
                f"{self.host_flops_per_s / 1e9:.1f} GFLOP/s measured here. Emulation can only slow "
                "compute down: pick a slower profile or run on a faster host."
            )
        self._snap = snap
        self._cap = self.profile.f_max_hz

    def max_hz(self) -> float:
        return self.profile.f_max_hz

    def min_hz(self) -> float:
        return self.profile.f_min_hz

    def steps_hz(self) -> list[float] | None:
        return list(self.profile.steps_hz) if self.profile.steps_hz else None

    def current_hz(self) -> float:
        return self._cap

    @property
    def flops_per_cycle(self) -> float:
        return self.profile.flops_per_cycle

    def _applied(self, requested: float) -> AppliedClock:
        return AppliedClock(
            requested, self._cap, self.name, True,
            f"profile {self.profile.name} (c={self.profile.flops_per_cycle:g}); compute stretched in time",
        )

    def set_cap(self, hz: float) -> AppliedClock:
        self._cap = snap_hz(hz, self.min_hz(), self.max_hz(), self.steps_hz(), self._snap)
        logger.info("emulated cap %.0f MHz requested, %.0f MHz applied (%s)", hz / 1e6, self._cap / 1e6,
                    self.profile.name)
        return self._applied(float(hz))

    def reset(self) -> AppliedClock:
        self._cap = self.max_hz()
        return self._applied(self._cap)

    def target_time_s(self, flops: float) -> float:
        """Seconds the profile needs for ``flops`` at the current cap: flops / (f_cap * c)."""
        if flops < 0:
            raise InvalidArgument(f"flops must be non-negative, got {flops!r}")
        return flops / (self._cap * self.profile.flops_per_cycle)

    def stretch(self, flops: float, measured_s: float) -> float:
        """Seconds to sleep after work that took ``measured_s`` so the total equals ``target_time_s``.

        Zero when the host was already slower than the target (logged: the
        emulated timing is then too slow, not too fast).
        """
        if measured_s < 0:
            raise InvalidArgument(f"measured_s must be non-negative, got {measured_s!r}")
        extra = self.target_time_s(flops) - measured_s
        if extra < 0:
            logger.debug("host took %.4fs, longer than the emulated %.4fs", measured_s, measured_s + extra)
            return 0.0
        return extra

    def sleep_stretch(self, flops: float, measured_s: float) -> float:
        """Blocking ``time.sleep`` of ``stretch(...)``; returns the seconds slept."""
        extra = self.stretch(flops, measured_s)
        if extra > 0:
            time.sleep(extra)
        return extra
