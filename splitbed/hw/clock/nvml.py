"""GPU clock cap and power limit through NVML (the edge server's GPU).

Locked clocks (``nvmlDeviceSetGpuLockedClocks``) snapped to the supported
graphics clocks at the highest memory clock, and the board power limit
(``nvmlDeviceSetPowerManagementLimit``) clamped to its constraints, as in
Zeus. NVML errors go through ``splitbed.hw.nvml_errors`` only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from splitbed.errors import InvalidArgument
from splitbed.hw.clock.base import AppliedClock, ClockBackend, SnapMode, snap_hz
from splitbed.hw.nvml_errors import load_pynvml, nvml_errors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppliedPowerLimit:
    """Result of ``NvmlClock.set_power_limit``: watts asked for and watts read back."""

    requested_w: float
    applied_w: float
    backend: str
    detail: str = ""


class NvmlClock(ClockBackend):
    """Locks GPU ``index``'s graphics clock to ``[lowest step, cap]`` (or pins it at the cap).

    ``pin=True`` locks min = max = cap, so the GPU cannot idle below the cap and
    compute time follows the model more closely at the cost of idle power.
    """

    name = "nvml"
    emulated = False

    def __init__(self, index: int = 0, *, snap: SnapMode = "down", pin: bool = False) -> None:
        self._nvml = load_pynvml()
        self._index = index
        self._snap = snap
        self._pin = pin
        with nvml_errors("initialise"):
            self._nvml.nvmlInit()
        with nvml_errors(f"open GPU {index}"):
            self._handle: Any = self._nvml.nvmlDeviceGetHandleByIndex(index)
        self._steps_cache: list[float] | None = None
        self._cap_hz: float | None = None

    def steps_hz(self) -> list[float]:
        if self._steps_cache is None:
            with nvml_errors(f"list supported clocks of GPU {self._index}"):
                mem_clocks = self._nvml.nvmlDeviceGetSupportedMemoryClocks(self._handle)
                # Graphics clocks depend on the memory clock; inference wants full memory speed.
                gfx = self._nvml.nvmlDeviceGetSupportedGraphicsClocks(self._handle, max(mem_clocks))
            self._steps_cache = sorted({float(mhz) * 1e6 for mhz in gfx})
        return list(self._steps_cache)

    def max_hz(self) -> float:
        return self.steps_hz()[-1]

    def min_hz(self) -> float:
        return self.steps_hz()[0]

    def current_hz(self) -> float:
        """The cap set through this backend if any, else the clock NVML reports now."""
        if self._cap_hz is not None:
            return self._cap_hz
        with nvml_errors(f"read the graphics clock of GPU {self._index}"):
            return float(self._nvml.nvmlDeviceGetClockInfo(self._handle, self._nvml.NVML_CLOCK_GRAPHICS)) * 1e6

    def _now_detail(self) -> str:
        with nvml_errors(f"read the graphics clock of GPU {self._index}"):
            now = self._nvml.nvmlDeviceGetClockInfo(self._handle, self._nvml.NVML_CLOCK_GRAPHICS)
        return f"GPU {self._index} graphics clock now {now} MHz"

    def set_cap(self, hz: float) -> AppliedClock:
        steps = self.steps_hz()
        target = snap_hz(hz, steps[0], steps[-1], steps, self._snap)
        mhz = round(target / 1e6)
        low = mhz if self._pin else round(steps[0] / 1e6)
        with nvml_errors(f"lock the clocks of GPU {self._index} to [{low}, {mhz}] MHz"):
            self._nvml.nvmlDeviceSetGpuLockedClocks(self._handle, low, mhz)
        # NVML has no getter for locked clocks; success means the driver took the
        # supported value we passed.
        self._cap_hz = mhz * 1e6
        logger.info("nvml GPU %d: cap %.0f MHz requested, locked [%d, %d] MHz", self._index, hz / 1e6, low, mhz)
        return AppliedClock(float(hz), self._cap_hz, self.name, False,
                            f"locked clocks [{low}, {mhz}] MHz; {self._now_detail()}")

    def reset(self) -> AppliedClock:
        with nvml_errors(f"reset the locked clocks of GPU {self._index}"):
            self._nvml.nvmlDeviceResetGpuLockedClocks(self._handle)
        self._cap_hz = None
        top = self.max_hz()
        return AppliedClock(top, top, self.name, False, f"locked clocks reset; {self._now_detail()}")

    def power_limit_range_w(self) -> tuple[float, float]:
        with nvml_errors(f"read the power limit constraints of GPU {self._index}"):
            lo_mw, hi_mw = self._nvml.nvmlDeviceGetPowerManagementLimitConstraints(self._handle)
        return lo_mw / 1e3, hi_mw / 1e3

    def power_limit_w(self) -> float:
        with nvml_errors(f"read the power limit of GPU {self._index}"):
            return float(self._nvml.nvmlDeviceGetPowerManagementLimit(self._handle)) / 1e3

    def set_power_limit(self, watts: float) -> AppliedPowerLimit:
        """Clamp ``watts`` to the board's constraints, set it, and read it back."""
        if not watts > 0:
            raise InvalidArgument(f"power limit must be positive watts, got {watts!r}")
        lo, hi = self.power_limit_range_w()
        target_mw = round(min(max(watts, lo), hi) * 1e3)
        with nvml_errors(f"set the power limit of GPU {self._index} to {target_mw} mW"):
            self._nvml.nvmlDeviceSetPowerManagementLimit(self._handle, target_mw)
        applied = self.power_limit_w()
        return AppliedPowerLimit(float(watts), applied, self.name, f"constraints [{lo:.0f}, {hi:.0f}] W")

    def close(self) -> None:
        with nvml_errors("shut down"):
            self._nvml.nvmlShutdown()
