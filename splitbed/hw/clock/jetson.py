"""Clock caps on NVIDIA Jetson boards: devfreq for the GPU, cpufreq for the CPU.

devfreq files hold Hz (cpufreq ones kHz). The GPU node is found under
``<sysfs>/class/devfreq/`` by name (``17000000.ga10b`` on Orin,
``17000000.gv11b`` on Xavier, ``57000000.gpu`` on Nano) unless given. The
nvpmodel power mode, where the tool exists, is reported in ``detail`` because
it bounds what devfreq accepts.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from splitbed.errors import Unavailable
from splitbed.hw import sysfs
from splitbed.hw.clock.base import AppliedClock, ClockBackend, SnapMode, snap_hz
from splitbed.hw.clock.cpufreq import CpufreqClock
from splitbed.hw.commands import Runner, run_command

logger = logging.getLogger(__name__)

GPU_DEVFREQ_PATTERN = re.compile(r"(gpu|ga10b|gv11b|gp10b|gm20b)", re.IGNORECASE)

DEVFREQ_GRANT_HINT = (
    "Run as root, or grant a group write access at boot with a udev rule, e.g. "
    'SUBSYSTEM=="devfreq", ACTION=="add", '
    'RUN+="/bin/chgrp splitbed /sys/class/devfreq/%k/max_freq /sys/class/devfreq/%k/min_freq", '
    'RUN+="/bin/chmod g+w /sys/class/devfreq/%k/max_freq /sys/class/devfreq/%k/min_freq"; '
    "in a container mount /sys read-write (privileged). Or pass --clock emulated."
)

def nvpmodel_mode(runner: Runner = run_command, command: Sequence[str] = ("nvpmodel", "-q")) -> str | None:
    """The power mode line of ``nvpmodel -q`` (e.g. ``MAXN``), or None where there is no nvpmodel."""
    try:
        proc = runner(command)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        logger.debug("nvpmodel -q failed: %s", proc.stderr.strip())
        return None
    for line in proc.stdout.splitlines():
        if "Power Mode" in line:
            return line.split(":", 1)[1].strip()
    return None


def find_gpu_devfreq(sysfs_root: Path) -> Path:
    base = sysfs_root / "class" / "devfreq"
    candidates = sorted(p for p in base.glob("*") if GPU_DEVFREQ_PATTERN.search(p.name)) if base.is_dir() else []
    if not candidates:
        raise Unavailable(f"no Jetson GPU devfreq node under {base}")
    return candidates[0]


class JetsonGpuClock(ClockBackend):
    """Caps a Jetson GPU through devfreq ``max_freq``, snapped to ``available_frequencies``."""

    name = "jetson"
    emulated = False

    def __init__(
        self,
        sysfs_root: Path = Path("/sys"),
        *,
        gpu_devfreq: str | None = None,
        snap: SnapMode = "down",
        runner: Runner = run_command,
    ) -> None:
        root = Path(sysfs_root)
        self._dir = root / "class" / "devfreq" / gpu_devfreq if gpu_devfreq else find_gpu_devfreq(root)
        if not (self._dir / "max_freq").exists():
            raise Unavailable(f"{self._dir / 'max_freq'} does not exist")
        self._snap = snap
        self._runner = runner
        self._top = max(self._available()) if self._available() else float(sysfs.read_int(self._dir / "max_freq"))

    def _available(self) -> list[float]:
        path = self._dir / "available_frequencies"
        return sorted({float(v) for v in sysfs.read_ints(path)}) if path.exists() else []

    def steps_hz(self) -> list[float] | None:
        return self._available() or None

    def max_hz(self) -> float:
        return self._top

    def min_hz(self) -> float:
        steps = self._available()
        return steps[0] if steps else float(sysfs.read_int(self._dir / "min_freq"))

    def current_hz(self) -> float:
        return float(sysfs.read_int(self._dir / "max_freq"))

    def _apply(self, requested: float, target: float) -> AppliedClock:
        min_path = self._dir / "min_freq"
        # devfreq rejects max_freq below min_freq on some kernels; lower the floor first.
        if min_path.exists() and sysfs.read_int(min_path) > target:
            sysfs.write_text(min_path, str(round(self.min_hz())), grant_hint=DEVFREQ_GRANT_HINT)
        sysfs.write_text(self._dir / "max_freq", str(round(target)), grant_hint=DEVFREQ_GRANT_HINT)
        applied = self.current_hz()
        mode = nvpmodel_mode(self._runner)
        detail = f"{self._dir.name} max_freq={applied / 1e6:.1f}MHz; nvpmodel={mode or 'n/a'}"
        logger.info("jetson GPU cap %.1f MHz requested, %.1f MHz applied", requested / 1e6, applied / 1e6)
        return AppliedClock(requested, applied, self.name, False, detail)

    def set_cap(self, hz: float) -> AppliedClock:
        target = snap_hz(hz, self.min_hz(), self.max_hz(), self.steps_hz(), self._snap)
        return self._apply(float(hz), target)

    def reset(self) -> AppliedClock:
        return self._apply(self.max_hz(), self.max_hz())


def make_jetson_clock(
    target: Literal["gpu", "cpu"] = "gpu",
    sysfs_root: Path = Path("/sys"),
    *,
    gpu_devfreq: str | None = None,
    snap: SnapMode = "down",
    runner: Runner = run_command,
    cpus: Iterable[int] | None = None,
) -> ClockBackend:
    """The Jetson GPU clock, or for ``target="cpu"`` its CPU clock (plain cpufreq)."""
    if target == "cpu":
        return CpufreqClock(sysfs_root, cpus, snap=snap)
    return JetsonGpuClock(sysfs_root, gpu_devfreq=gpu_devfreq, snap=snap, runner=runner)
