"""Pick a clock backend by name; ``auto`` falls back to emulation with a warning."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from splitbed.errors import InvalidArgument, SplitbedError
from splitbed.hw.clock.base import ClockBackend, SnapMode
from splitbed.hw.clock.cpufreq import CpufreqClock
from splitbed.hw.clock.emulated import EmulatedClock
from splitbed.hw.clock.jetson import JetsonGpuClock
from splitbed.hw.clock.nvml import NvmlClock

logger = logging.getLogger(__name__)

CLOCK_KINDS = ("auto", "cpufreq", "nvml", "jetson", "emulated")


def measure_host_flops(seconds: float = 0.3, n: int = 512, windows: int = 6) -> float:
    """Best sustained FP32 matmul FLOP/s of this host (numpy), for the emulated clock.

    The best of ``windows`` short windows is taken, so other load on a shared
    host lowers the figure less. The agent may pass a better figure (its own
    torch profile of the model); this is the fallback when none is given.
    """
    import numpy as np

    a = np.ones((n, n), dtype=np.float32)
    b = np.ones((n, n), dtype=np.float32)
    a @ b  # warm-up: the first call pays for thread-pool start-up
    best = 0.0
    for _ in range(max(1, windows)):
        count = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / max(1, windows) or count == 0:
            a @ b
            count += 1
        best = max(best, 2.0 * n**3 * count / elapsed)
    return best


def make_clock(
    kind: str = "auto",
    *,
    sysfs_root: Path = Path("/sys"),
    gpu_index: int = 0,
    gpu_devfreq: str | None = None,
    profile: str = "paper-device",
    host_flops_per_s: float | None = None,
    snap: SnapMode = "down",
    prefer: tuple[str, ...] = ("nvml", "jetson", "cpufreq"),
) -> ClockBackend:
    """A clock backend of ``kind`` (one of ``CLOCK_KINDS``).

    ``auto`` tries the real backends in ``prefer`` order and, when none works
    here, returns an ``EmulatedClock(profile, host_flops_per_s)`` after a
    WARNING naming why each real one was skipped (absent, unreadable, NVML
    missing). Write permission is only tested by ``set_cap``, which raises
    ``PermissionDenied`` with the fix; it is never swallowed.
    """
    if kind not in CLOCK_KINDS:
        raise InvalidArgument(f"unknown clock kind {kind!r}; choose one of {', '.join(CLOCK_KINDS)}")

    def real(name: str) -> ClockBackend:
        if name == "cpufreq":
            return CpufreqClock(sysfs_root, snap=snap)
        if name == "nvml":
            return NvmlClock(gpu_index, snap=snap)
        if name == "jetson":
            return JetsonGpuClock(sysfs_root, gpu_devfreq=gpu_devfreq, snap=snap)
        raise InvalidArgument(f"unknown real clock backend {name!r}")

    def emulated() -> ClockBackend:
        flops = host_flops_per_s if host_flops_per_s is not None else measure_host_flops()
        return EmulatedClock(profile, flops, snap=snap)

    if kind == "emulated":
        return emulated()
    if kind != "auto":
        return real(kind)
    reasons: list[str] = []
    for name in prefer:
        try:
            backend = real(name)
            backend.current_hz()  # proves the files/handles are readable
            return backend
        except SplitbedError as exc:
            reasons.append(f"{name}: {exc}")
    logger.warning("no real clock backend works here, emulating profile %r. Why: %s", profile, "; ".join(reasons))
    return emulated()
