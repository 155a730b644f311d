"""Named compute profiles the emulated clock can imitate.

A profile is a clock range (optionally discrete steps) and a FLOPs-per-cycle
figure ``c``, so a cap ``f`` gives ``f * c`` FLOP/s (the paper's model).
Only ``paper-device`` and ``paper-server`` are exact (the paper's section VI
values); the board profiles are approximate, order-of-magnitude figures for
sustained FP32 inference, not vendor peaks.
"""

from __future__ import annotations

from dataclasses import dataclass

from splitbed.errors import NotFound


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    f_max_hz: float
    flops_per_cycle: float
    f_min_hz: float
    steps_hz: tuple[float, ...] | None = None
    note: str = ""

    @property
    def peak_flops_per_s(self) -> float:
        return self.f_max_hz * self.flops_per_cycle


PROFILES: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        DeviceProfile("paper-device", 1e9, 32.0, 1e8, None, "Lyu et al. sec. VI: f_max = 1 GHz, c = 32 (exact)"),
        DeviceProfile("paper-server", 4e9, 128.0, 4e8, None, "Lyu et al. sec. VI: f~_max = 4 GHz, c~ = 128 (exact)"),
        DeviceProfile(
            "raspberry-pi-4",
            1.5e9,
            16.0,
            6e8,
            tuple(mhz * 1e6 for mhz in range(600, 1501, 100)),
            "approximate: 4x Cortex-A72, cpufreq 600-1500 MHz in 100 MHz steps, ~4 sustained FP32 FLOPs/cycle/core",
        ),
        DeviceProfile(
            "edge-cpu",
            2.0e9,
            32.0,
            8e8,
            tuple(mhz * 1e6 for mhz in range(800, 2001, 200)),
            "approximate: a modest x86 edge box (64 GFLOP/s at 2 GHz); the default server profile for emulation, "
            "chosen slower than a 2-core CI host so it can be emulated there",
        ),
        DeviceProfile(
            "jetson-orin-nano",
            624.75e6,
            2048.0,
            306e6,
            (306e6, 408e6, 510e6, 624.75e6),
            "approximate: 1024-core Ampere GPU (2 FLOPs/core/cycle FMA), devfreq steps of the 15 W mode",
        ),
    )
}


def get_profile(name: str) -> DeviceProfile:
    try:
        return PROFILES[name]
    except KeyError as exc:
        raise NotFound(f"unknown device profile {name!r}; known: {', '.join(sorted(PROFILES))}") from exc
