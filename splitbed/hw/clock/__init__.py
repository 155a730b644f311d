"""Clock-cap backends: cpufreq, NVML, Jetson devfreq, and an emulated clock."""

from splitbed.hw.clock.base import AppliedClock, ClockBackend, SnapMode, snap_hz
from splitbed.hw.clock.cpufreq import CpufreqClock
from splitbed.hw.clock.emulated import EmulatedClock
from splitbed.hw.clock.factory import CLOCK_KINDS, make_clock, measure_host_flops
from splitbed.hw.clock.jetson import JetsonGpuClock, make_jetson_clock, nvpmodel_mode
from splitbed.hw.clock.nvml import AppliedPowerLimit, NvmlClock
from splitbed.hw.clock.profiles import PROFILES, DeviceProfile, get_profile

__all__ = [
    "CLOCK_KINDS",
    "PROFILES",
    "AppliedClock",
    "AppliedPowerLimit",
    "ClockBackend",
    "CpufreqClock",
    "DeviceProfile",
    "EmulatedClock",
    "JetsonGpuClock",
    "NvmlClock",
    "SnapMode",
    "get_profile",
    "make_clock",
    "make_jetson_clock",
    "measure_host_flops",
    "nvpmodel_mode",
    "snap_hz",
]
