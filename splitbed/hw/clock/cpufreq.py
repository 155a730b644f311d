"""CPU clock cap through Linux cpufreq sysfs (``scaling_max_freq``).

cpufreq files hold kHz. The cap is written for every CPU this process may run
on (``os.sched_getaffinity(0)``) and read back, so the reported value is what
the kernel accepted (it silently clamps to the policy's limits).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from splitbed.errors import Unavailable
from splitbed.hw import sysfs
from splitbed.hw.clock.base import AppliedClock, ClockBackend, SnapMode, snap_hz

logger = logging.getLogger(__name__)

CPUFREQ_GRANT_HINT = (
    "Run as root, or grant a group write access at boot with a udev rule, e.g. in "
    "/etc/udev/rules.d/99-splitbed-cpufreq.rules: "
    'SUBSYSTEM=="cpu", ACTION=="add", '
    'RUN+="/bin/chgrp splitbed /sys/devices/system/cpu/cpu%n/cpufreq/scaling_max_freq", '
    'RUN+="/bin/chmod g+w /sys/devices/system/cpu/cpu%n/cpufreq/scaling_max_freq" '
    "(and add the agent's user to group 'splitbed'); in a container mount /sys "
    "read-write (privileged), or delegate the write to a small privileged helper "
    "(as Zeus does with zeusd). Or pass --clock emulated."
)


class CpufreqClock(ClockBackend):
    """Caps ``scaling_max_freq`` of the CPUs in this process's affinity set.

    The first CPU defines ``max_hz``/``min_hz``/``steps_hz``; every CPU is
    snapped against its own policy, and the applied value reported is the
    lowest read-back cap among them (per-CPU values are in ``detail``).
    """

    name = "cpufreq"
    emulated = False

    def __init__(
        self,
        sysfs_root: Path = Path("/sys"),
        cpus: Iterable[int] | None = None,
        snap: SnapMode = "down",
    ) -> None:
        self._root = Path(sysfs_root)
        self._cpus = sorted(cpus) if cpus is not None else sorted(os.sched_getaffinity(0))
        self._snap = snap
        if not self._cpus:
            raise Unavailable("no CPUs in the affinity set")
        for cpu in self._cpus:
            if not (self._dir(cpu) / "scaling_max_freq").exists():
                raise Unavailable(
                    f"cpufreq is not available: {self._dir(cpu) / 'scaling_max_freq'} does not "
                    "exist (no cpufreq driver, or /sys not mounted in this container)"
                )

    @property
    def cpus(self) -> list[int]:
        return list(self._cpus)

    def _dir(self, cpu: int) -> Path:
        return self._root / "devices" / "system" / "cpu" / f"cpu{cpu}" / "cpufreq"

    def _limits_hz(self, cpu: int) -> tuple[float, float]:
        d = self._dir(cpu)
        return sysfs.read_int(d / "cpuinfo_min_freq") * 1e3, sysfs.read_int(d / "cpuinfo_max_freq") * 1e3

    def _steps(self, cpu: int) -> list[float] | None:
        path = self._dir(cpu) / "scaling_available_frequencies"
        # intel_pstate and amd-pstate expose no list: any kHz in range is valid.
        if not path.exists():
            return None
        steps = sorted({k * 1e3 for k in sysfs.read_ints(path)})
        return steps or None

    def max_hz(self) -> float:
        return self._limits_hz(self._cpus[0])[1]

    def min_hz(self) -> float:
        return self._limits_hz(self._cpus[0])[0]

    def steps_hz(self) -> list[float] | None:
        return self._steps(self._cpus[0])

    def current_hz(self) -> float:
        return sysfs.read_int(self._dir(self._cpus[0]) / "scaling_max_freq") * 1e3

    def _write_all(self, requested_hz: float, per_cpu_target: dict[int, float]) -> AppliedClock:
        applied: dict[int, float] = {}
        for cpu, target in per_cpu_target.items():
            path = self._dir(cpu) / "scaling_max_freq"
            sysfs.write_text(path, str(round(target / 1e3)), grant_hint=CPUFREQ_GRANT_HINT)
            applied[cpu] = sysfs.read_int(path) * 1e3
        lowest = min(applied.values())
        detail = ", ".join(f"cpu{c}={v / 1e6:.0f}MHz" for c, v in applied.items())
        for cpu, value in applied.items():
            if abs(value - per_cpu_target[cpu]) > 1e3:
                logger.warning(
                    "cpufreq cpu%d: wrote %.0f kHz, kernel holds %.0f kHz", cpu, per_cpu_target[cpu] / 1e3, value / 1e3
                )
        logger.info("cpufreq cap %.0f MHz requested, %.0f MHz applied (%s)", requested_hz / 1e6, lowest / 1e6, detail)
        return AppliedClock(requested_hz, lowest, self.name, False, f"scaling_max_freq: {detail}")

    def set_cap(self, hz: float) -> AppliedClock:
        targets: dict[int, float] = {}
        for cpu in self._cpus:
            lo, hi = self._limits_hz(cpu)
            targets[cpu] = snap_hz(hz, lo, hi, self._steps(cpu), self._snap)
        return self._write_all(float(hz), targets)

    def reset(self) -> AppliedClock:
        targets = {cpu: self._limits_hz(cpu)[1] for cpu in self._cpus}
        return self._write_all(targets[self._cpus[0]], targets)

